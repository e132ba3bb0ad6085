# frozen_string_literal: true
module Types
  class LessonType < BaseObject
    graphql_name "Lesson"
    field :id, ID, null: false
    field :title, String, null: false
    field :minutes, Integer, null: false
  end
end
