# frozen_string_literal: true
# A deliberately small Rails 6.1 app: no ActiveRecord, no asset pipeline.
# Only system gems are used (no Bundler).
require "rails"
require "action_controller/railtie"
require "action_cable/engine"
require "graphql"
require "digest"
require "json"

module SlogateFixture
  class Application < Rails::Application
    config.load_defaults 6.1
    config.root = File.expand_path("..", __dir__)
    config.api_only = true

    # Production-like: errors render public/500.html, classes eager loaded.
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE",
      "slogate-test-fixture-secret-key-base-not-secret-0123456789abcdef0123456789abcdef")

    # Accept any Host header (the proxy may forward anything).
    config.hosts.clear

    # Behind nginx / the proxy: Rails does not serve public/ itself.
    config.public_file_server.enabled = false

    # Log to stdout, warn and above only.
    $stdout.sync = true
    config.logger = ActiveSupport::Logger.new($stdout)
    config.logger.formatter = ::Logger::Formatter.new
    config.log_level = :warn
    config.log_tags = []

    # Rack::Sendfile (already in Rails' default stack). NOTE: rack 2.2.22 no
    # longer honours the X-Sendfile-Type *request* header (security fix), so
    # with `nil` here X-Accel-Redirect could never be produced. We therefore
    # configure the variation explicitly; Rack::Sendfile then maps the path
    # using the X-Accel-Mapping request header sent by the proxy, and falls back
    # to sending the file body when that header is absent.
    # Override with SENDFILE_HEADER="" (nil) or e.g. "X-Sendfile".
    sendfile = ENV.fetch("SENDFILE_HEADER", "X-Accel-Redirect")
    config.action_dispatch.x_sendfile_header = sendfile.empty? ? nil : sendfile

    # gzip responses when the client sends Accept-Encoding: gzip. Placed outside
    # Rack::Sendfile so send_file bodies still reach Rack::Sendfile as files.
    config.middleware.insert_before Rack::Sendfile, Rack::Deflater

    # ActionCable at /cable, in-process async adapter, any Origin accepted.
    config.action_cable.mount_path = "/cable"
    config.action_cable.cable = { "adapter" => "async" }
    config.action_cable.disable_request_forgery_protection = true
  end
end
