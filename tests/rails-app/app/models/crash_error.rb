# frozen_string_literal: true
# Raised by the `crash` GraphQL field. AppSchema re-raises it from its
# rescue_from handler, so it escapes to Rails and becomes an HTTP 500.
class CrashError < StandardError; end
