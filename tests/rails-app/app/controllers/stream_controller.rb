# frozen_string_literal: true
# GET /stream?chunks=N&ms=M -- Server-Sent Events written with
# ActionController::Live, one event every M ms, so a proxy test can check that
# chunks are forwarded as they are produced.
class StreamController < ApplicationController
  include ActionController::Live

  def show
    chunks = (params[:chunks] || 5).to_i.clamp(0, 100_000)
    ms = (params[:ms] || 100).to_i.clamp(0, 600_000)

    response.headers["Content-Type"] = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    # Rack::ETag (in Rails' default stack) would buffer the whole body to
    # compute a digest; it skips responses that already carry Last-Modified.
    response.headers["Last-Modified"] = Time.now.httpdate

    sse = ActionController::Live::SSE.new(response.stream, event: "tick")
    chunks.times do |i|
      sleep(ms / 1000.0) if i.positive?
      sse.write({ i: i, at: Time.now.to_f }, id: i)
    end
  rescue ActionController::Live::ClientDisconnected
    # client went away; nothing to do
  ensure
    response.stream.close
  end
end
