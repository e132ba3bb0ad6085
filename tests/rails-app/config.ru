# frozen_string_literal: true
# Boots the slogate test fixture Rails app.
#   puma -b tcp://127.0.0.1:$PORT -t 4:4 -w 0 tests/rails-app/config.ru
ENV["RAILS_ENV"] ||= "production"
ENV["RACK_ENV"] ||= ENV["RAILS_ENV"]

require_relative "config/application"
Rails.application.initialize!

# Test harnesses set EXIT_WITH_PARENT to their pid, so a Puma they started never outlives
# them (a panicking or killed test cannot leave it behind).
if (parent = ENV["EXIT_WITH_PARENT"])
  Thread.new do
    loop do
      sleep 0.5
      begin
        Process.kill(0, Integer(parent))
      rescue Errno::ESRCH
        exit!(0)
      end
    end
  end
end

run Rails.application
