# frozen_string_literal: true
module Types
  class UserType < BaseObject
    graphql_name "User"
    field :id, ID, null: false
    field :name, String, null: false
    field :email, String, null: true
  end
end
