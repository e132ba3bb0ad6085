# frozen_string_literal: true
# Sends every message it receives straight back to the sender.
class EchoChannel < ApplicationCable::Channel
  def receive(data)
    transmit(data)
  end
end
