# frozen_string_literal: true

# Enqueues jobs with Sidekiq's own client (so `enqueued_at` is set as in
# production): `ruby enqueue.rb CLASS:COUNT[:ARG] ...`, e.g. `HardJob:10 SleepJob:3:0.5`.
# Reads REDIS_URL. Prints the Unix time after the last push.
require "sidekiq"
require_relative "app"

ARGV.each do |spec|
  klass, count, arg = spec.split(":")
  worker = Object.const_get(klass)
  Integer(count).times do |i|
    worker.perform_async(arg.nil? ? i : Float(arg))
  end
end
puts format("%.6f", Time.now.to_f)
