# frozen_string_literal: true
module Types
  class CourseType < BaseObject
    graphql_name "Course"
    field :id, ID, null: false
    field :title, String, null: false
    field :lessons, [LessonType, null: true], null: true
  end
end
