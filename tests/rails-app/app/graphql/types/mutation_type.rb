# frozen_string_literal: true
module Types
  class MutationType < BaseObject
    graphql_name "Mutation"

    field :create_course, CourseType, null: true do
      argument :title, String, required: true
    end
    def create_course(title:)
      if title.strip.empty?
        raise GraphQL::ExecutionError.new("title can't be blank", extensions: { "code" => "BAD_USER_INPUT" })
      end
      Catalog.build(title)
    end

    field :upload_size, Integer, null: true, description: "Size in bytes of the uploaded file" do
      argument :file, UploadType, required: true
    end
    def upload_size(file:)
      file.size
    end
  end
end
