# frozen_string_literal: true
class AppSchema < GraphQL::Schema
  query Types::QueryType
  mutation Types::MutationType
  subscription Types::SubscriptionType

  # Unexpected exceptions in resolvers become an INTERNAL_SERVER_ERROR field
  # error (HTTP 200, data present) -- except CrashError, which is re-raised so
  # Rails renders its 500 page.
  rescue_from(StandardError) do |err, _obj, _args, _ctx, _field|
    raise err if err.is_a?(CrashError)

    raise GraphQL::ExecutionError.new("Internal server error",
                                      extensions: { "code" => "INTERNAL_SERVER_ERROR" })
  end
end
