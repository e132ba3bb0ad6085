# frozen_string_literal: true
# Boots the slogate test fixture Rails app.
#   puma -b tcp://127.0.0.1:$PORT -t 4:4 -w 0 tests/rails-app/config.ru
ENV["RAILS_ENV"] ||= "production"
ENV["RACK_ENV"] ||= ENV["RAILS_ENV"]

require_relative "config/application"
Rails.application.initialize!

run Rails.application
