# frozen_string_literal: true
# In-process store for Automatic Persisted Queries (Apollo APQ protocol).
module PersistedQueryStore
  STORE = Concurrent::Map.new

  NOT_FOUND = {
    "errors" => [{ "message" => "PersistedQueryNotFound",
                   "extensions" => { "code" => "PERSISTED_QUERY_NOT_FOUND" } }],
  }.freeze

  HASH_MISMATCH = {
    "errors" => [{ "message" => "provided sha does not match query",
                   "extensions" => { "code" => "BAD_REQUEST" } }],
  }.freeze

  # Resolves the query text for one operation.
  # Returns [query_string, nil] or [nil, error_response_hash].
  def self.resolve(query, extensions)
    pq = extensions.is_a?(Hash) ? extensions["persistedQuery"] : nil
    hash = pq.is_a?(Hash) ? pq["sha256Hash"] : nil
    return [query, nil] if hash.nil?

    hash = hash.to_s.downcase

    if query.nil? || query.empty?
      stored = STORE[hash]
      stored ? [stored, nil] : [nil, NOT_FOUND]
    elsif Digest::SHA256.hexdigest(query) == hash
      STORE[hash] = query
      [query, nil]
    else
      [nil, HASH_MISMATCH]
    end
  end
end
