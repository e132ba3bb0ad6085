# frozen_string_literal: true
# GET /up -- health check like Rails 7.1's.
class HealthController < ApplicationController
  def show
    render plain: "OK"
  end
end
