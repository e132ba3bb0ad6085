# frozen_string_literal: true

# The server middleware from slogate's README (section "slogate jobs"; a test
# checks the two are identical): it adds the queue, the time the job was
# enqueued and, on failure, the exception class to the context of Sidekiq's
# `done`/`fail` log lines.
#
# `Sidekiq::Context.add`, not `.with`: `with` restores the context when its
# block returns, before Sidekiq's JobLogger writes the `done`/`fail` line.
class SlogateJobContext
  def call(_worker, job, queue)
    Sidekiq::Context.add(:queue, queue)
    Sidekiq::Context.add(:enqueued_at, job["enqueued_at"]) if job["enqueued_at"]
    yield
  rescue Exception => e # re-raised: Sidekiq's retries and error handlers still run
    Sidekiq::Context.add(:error_class, e.class.name)
    raise
  end
end
