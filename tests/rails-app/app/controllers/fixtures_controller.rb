# frozen_string_literal: true
# Endpoints that exist only to test the proxy.
class FixturesController < ApplicationController
  MAX_KB = 200_000

  # GET|POST /echo -- what Rails saw of the request.
  def echo
    body = request_body
    headers = request.env.select { |k, _| k.start_with?("HTTP_") }
    %w[CONTENT_TYPE CONTENT_LENGTH REMOTE_ADDR].each { |k| headers[k] = request.env[k] if request.env.key?(k) }

    render json: {
      method: request.request_method,
      path: request.path,
      query_string: request.query_string,
      headers: headers.sort.to_h,
      remote_ip: request.remote_ip,
      ssl: request.ssl?,
      host: request.host,
      port: request.port,
      protocol: request.protocol,
      url: request.url,
      request_id: request.request_id,
      body_length: body.bytesize,
      body_sha256: Digest::SHA256.hexdigest(body),
    }
  end

  # GET /status/:code -- answer with that status and a tiny JSON body.
  def status
    code = params[:code].to_i
    return render(json: { error: "status must be 200..599" }, status: :bad_request) unless (200..599).cover?(code)

    render json: { status: code, message: Rack::Utils::HTTP_STATUS_CODES[code] }, status: code
  end

  # GET /boom -- unhandled exception: Rails renders public/500.html.
  def boom
    raise "boom"
  end

  # GET /slow?ms=N
  def slow
    ms = params[:ms].to_i.clamp(0, 600_000)
    sleep(ms / 1000.0)
    render plain: "slept #{ms}ms"
  end

  # GET /big?kb=N -- text/plain body of N KiB.
  def big
    kb = params[:kb].to_i
    return render(plain: "kb must be in 0..#{MAX_KB}", status: :bad_request) unless (0..MAX_KB).cover?(kb)

    render plain: "x" * (kb * 1024)
  end

  # GET /download -- send_file, so Rack::Sendfile can turn it into X-Accel-Redirect.
  def download
    send_file Rails.root.join("files", "report.txt"), type: "text/plain", disposition: "attachment"
  end

  private

  def request_body
    io = request.body
    io.rewind if io.respond_to?(:rewind)
    data = io.read.to_s
    io.rewind if io.respond_to?(:rewind)
    data
  end
end
