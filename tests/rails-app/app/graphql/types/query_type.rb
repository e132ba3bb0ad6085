# frozen_string_literal: true
module Types
  class QueryType < BaseObject
    graphql_name "Query"

    def self.error(message, code)
      GraphQL::ExecutionError.new(message, extensions: { "code" => code })
    end

    field :course, CourseType, null: true do
      argument :id, ID, required: true
    end
    def course(id:)
      Catalog.find(id) || raise(QueryType.error("Course #{id} not found", "NOT_FOUND"))
    end

    field :courses, [CourseType], null: false
    def courses
      Catalog.all
    end

    field :me, UserType, null: true, description: "Needs header Authorization: Bearer good"
    def me
      context[:current_user] || raise(QueryType.error("You must be logged in", "UNAUTHENTICATED"))
    end

    field :forbidden, String, null: true
    def forbidden
      raise QueryType.error("You are not allowed to see this", "FORBIDDEN")
    end

    field :bad_input, String, null: true do
      argument :value, Integer, required: true
    end
    def bad_input(value:)
      raise QueryType.error("value must be >= 0", "BAD_USER_INPUT") if value.negative?
      "ok"
    end

    field :internal_error, String, null: true,
      description: "Raises a StandardError; AppSchema.rescue_from turns it into INTERNAL_SERVER_ERROR"
    def internal_error
      raise "database is on fire"
    end

    field :non_null_violation, String, null: false,
      description: "Resolves to nil; graphql-ruby reports the violation itself (no code)"
    def non_null_violation
      nil
    end

    field :custom_code, String, null: true do
      argument :code, String, required: true
    end
    def custom_code(code:)
      raise QueryType.error("custom error #{code}", code)
    end

    field :multiple_errors, [String, null: true], null: true
    def multiple_errors
      context.add_error(QueryType.error("first error: bad input", "BAD_USER_INPUT"))
      context.add_error(QueryType.error("second error: not found", "NOT_FOUND"))
      ["partial"]
    end

    field :crash, String, null: true,
      description: "Raises CrashError, which the schema does not handle: HTTP 500"
    def crash
      raise CrashError, "unhandled crash"
    end

    field :slow, String, null: true do
      argument :ms, Integer, required: true
    end
    def slow(ms:)
      sleep(ms.clamp(0, 600_000) / 1000.0)
      "slept"
    end

    field :big, String, null: true do
      argument :kb, Integer, required: true
    end
    def big(kb:)
      raise QueryType.error("kb must be in 0..200000", "BAD_USER_INPUT") unless (0..200_000).cover?(kb)
      "x" * (kb * 1024)
    end

    field :echo, String, null: true do
      argument :text, String, required: false
    end
    def echo(text: nil)
      text
    end
  end
end
