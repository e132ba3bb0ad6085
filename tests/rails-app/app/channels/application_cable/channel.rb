# frozen_string_literal: true
module ApplicationCable
  class Channel < ActionCable::Channel::Base
  end
end
