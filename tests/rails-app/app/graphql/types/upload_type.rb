# frozen_string_literal: true
module Types
  # graphql-multipart-request-spec file. GraphqlController replaces the `null`
  # placeholders in `operations` with the uploaded file objects.
  class UploadType < GraphQL::Schema::Scalar
    graphql_name "Upload"
    description "A file uploaded with a multipart/form-data request"

    def self.coerce_input(value, _ctx)
      if value.respond_to?(:read) && value.respond_to?(:size)
        value
      else
        raise GraphQL::CoercionError, "#{value.inspect} is not an uploaded file"
      end
    end

    def self.coerce_result(value, _ctx)
      value.respond_to?(:original_filename) ? value.original_filename : value.to_s
    end
  end
end
