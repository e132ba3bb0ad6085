# frozen_string_literal: true

# Sidekiq fixture for slogate-jobs' integration tests (crates/slogate-jobs/tests/).
#
#   sidekiq -r ./tests/sidekiq-app/app.rb -C ./tests/sidekiq-app/sidekiq.yml
#
# Reads REDIS_URL like any Sidekiq app. Logs with Sidekiq's JSON formatter and
# installs the slogate middleware exactly as the README shows it (set
# SLOGATE_MIDDLEWARE=0 to run without it).

require "sidekiq"
require_relative "slogate_middleware"

# The test suite must not wait for Sidekiq's production timings: the scheduler
# (which moves due retries back to their queue) polls every second, and
# FlakyJob's retry is due one second after its failure (Sidekiq 6.4.1 adds up
# to 9 s of random jitter to `sidekiq_retry_in`; a fixture cannot afford it).
Sidekiq.options[:poll_interval_average] = 1
Sidekiq.options[:average_scheduled_poll_interval] = 1
module FixtureFastRetry
  def delay_for(_worker, _count, _exception)
    1
  end
end

# Debian's redis gem 4.8 warns on every BRPOP Sidekiq 6.4.1 sends.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

# As the README's "slogate jobs" section shows it.
Sidekiq.configure_server do |config|
  config.logger.formatter = Sidekiq::Logger::Formatters::JSON.new
  if ENV.fetch("SLOGATE_MIDDLEWARE", "1") == "1"
    config.server_middleware { |chain| chain.add SlogateJobContext }
  end

  require "sidekiq/job_retry"
  Sidekiq::JobRetry.prepend(FixtureFastRetry)
end

# Stand-in for ActiveRecord::RecordNotFound: the record was deleted before the
# job ran. slogate's config lists the error class as a client error.
module ActiveRecord
  class RecordNotFound < StandardError; end
end

# Succeeds.
class HardJob
  include Sidekiq::Worker
  sidekiq_options retry: 0

  def perform(_n)
  end
end

# Sleeps for `seconds`, then succeeds.
class SleepJob
  include Sidekiq::Worker
  sidekiq_options retry: 0, queue: "slow"

  def perform(seconds)
    sleep(seconds)
  end
end

# Always fails: a system error.
class BoomJob
  include Sidekiq::Worker
  sidekiq_options retry: 0

  def perform(_n)
    raise "boom"
  end
end

# Fails with ActiveRecord::RecordNotFound: a client error by error class.
class MissingRecordJob
  include Sidekiq::Worker
  sidekiq_options retry: 0

  def perform(id)
    raise ActiveRecord::RecordNotFound, "Couldn't find Course with 'id'=#{id}"
  end
end

# Fails with a plain error, but the class is listed as a client error.
class LegacyCleanupJob
  include Sidekiq::Worker
  sidekiq_options retry: 0, queue: "critical"

  def perform(_n)
    raise ArgumentError, "nothing to clean"
  end
end

# Fails on its first attempt and succeeds on the retry (attempts are counted
# in Redis, so this holds across processes).
class FlakyJob
  include Sidekiq::Worker
  sidekiq_options retry: 1

  def perform(n)
    attempt = Sidekiq.redis { |conn| conn.incr("fixture:flaky:#{jid}") }
    raise IOError, "transient failure of #{n}" if attempt == 1
  end
end
