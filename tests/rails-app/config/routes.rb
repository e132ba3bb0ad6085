# frozen_string_literal: true
Rails.application.routes.draw do
  # GraphQL
  post "/graphql", to: "graphql#execute"
  get  "/graphql", to: "graphql#execute"

  # Health check (like Rails 7.1's /up)
  get "/up", to: "health#show"

  # REST
  namespace :api do
    namespace :v1 do
      resources :courses, only: [:show, :create]
      resources :users, only: [] do
        resources :courses, only: [:show]
      end
    end
  end

  # Proxy test helpers
  match "/echo", to: "fixtures#echo", via: [:get, :post, :put, :patch, :delete]
  get "/status/:code", to: "fixtures#status", constraints: { code: /\d{3}/ }
  get "/boom", to: "fixtures#boom"
  get "/slow", to: "fixtures#slow"
  get "/big", to: "fixtures#big"
  get "/download", to: "fixtures#download"
  get "/stream", to: "stream#show"

  # ActionCable is mounted at /cable by config.action_cable.mount_path.
end
