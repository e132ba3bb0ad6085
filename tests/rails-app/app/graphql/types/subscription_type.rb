# frozen_string_literal: true
module Types
  # Present in the schema so clients/proxies can see the operation type.
  # No subscription transport is wired up; over HTTP it answers an error.
  class SubscriptionType < BaseObject
    graphql_name "Subscription"

    field :course_updated, CourseType, null: true
    def course_updated
      raise GraphQL::ExecutionError.new("Subscriptions are not supported over HTTP",
                                        extensions: { "code" => "BAD_REQUEST" })
    end
  end
end
