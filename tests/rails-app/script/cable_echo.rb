# frozen_string_literal: true
# Minimal ActionCable client: subscribes to EchoChannel, sends one message and
# exits 0 when it comes back, non-zero on close or after 5 s.
#   ruby script/cable_echo.rb ws://127.0.0.1:PORT/cable
#   ruby script/cable_echo.rb ws+unix:///tmp/rails.sock
# Uses the websocket-driver gem that ActionCable itself depends on.
require "socket"
require "json"
require "uri"
require "websocket/driver"

Transport = Struct.new(:url, :io) do
  def write(data)
    io.write(data)
  end
end

uri = URI(ARGV[0] || "ws://127.0.0.1:3000/cable")
if uri.scheme == "ws+unix"
  io = UNIXSocket.new(uri.path)
  url = "ws://localhost/cable"
else
  io = TCPSocket.new(uri.host, uri.port)
  url = uri.to_s
end

identifier = { channel: "EchoChannel" }.to_json
driver = WebSocket::Driver.client(Transport.new(url, io), protocols: ["actioncable-v1-json"])
driver.set_header("Origin", "http://any-origin.example")

driver.on(:open) do
  driver.text({ command: "subscribe", identifier: identifier }.to_json)
end
driver.on(:message) do |event|
  msg = JSON.parse(event.data)
  next if msg["type"] == "ping"

  puts "recv #{event.data}"
  if msg["type"] == "confirm_subscription"
    driver.text({ command: "message", identifier: identifier, data: { text: "hello cable" }.to_json }.to_json)
  elsif msg["message"]
    puts "ECHO OK"
    exit 0
  end
end
driver.on(:close) do |event|
  puts "closed #{event.code} #{event.reason}"
  exit 1
end

driver.start
deadline = Time.now + 5
loop do
  driver.parse(io.readpartial(4096)) if IO.select([io], nil, nil, 0.5)
  abort("timeout") if Time.now > deadline
end
