# frozen_string_literal: true
# Static, read-only in-memory data (the fixture is stateless and deterministic).
module Catalog
  Course = Struct.new(:id, :title, :lessons, keyword_init: true)
  Lesson = Struct.new(:id, :title, :minutes, keyword_init: true)
  User = Struct.new(:id, :name, :email, keyword_init: true)

  COURSES = [
    Course.new(id: "1", title: "Intro to Rust", lessons: [
      Lesson.new(id: "1-1", title: "Ownership", minutes: 12),
      Lesson.new(id: "1-2", title: "Borrowing", minutes: 15),
    ]),
    Course.new(id: "2", title: "Rails in Production", lessons: [
      Lesson.new(id: "2-1", title: "Puma", minutes: 9),
    ]),
    Course.new(id: "3", title: "GraphQL SLIs", lessons: []),
  ].freeze

  CURRENT_USER = User.new(id: "42", name: "Good User", email: "good@example.com").freeze

  NEXT_ID = Concurrent::AtomicFixnum.new(100)

  def self.all
    COURSES
  end

  def self.find(id)
    COURSES.find { |c| c.id == id.to_s }
  end

  # "Creates" a course: returns a new record with a fresh id but does not store
  # it, so `courses` stays deterministic.
  def self.build(title)
    Course.new(id: NEXT_ID.increment.to_s, title: title, lessons: [])
  end

  def self.course_json(course)
    {
      id: course.id,
      title: course.title,
      lessons: course.lessons.map { |l| { id: l.id, title: l.title, minutes: l.minutes } },
    }
  end
end
