# frozen_string_literal: true
# Modelled on graphql-ruby's generated GraphqlController, extended with:
# batching (JSON array -> AppSchema.multiplex), GET, application/graphql,
# multipart uploads (graphql-multipart-request-spec), Apollo APQ, and the
# X-GraphQL-Error-Code response header.
class GraphqlController < ApplicationController
  class BadRequest < StandardError; end

  def execute
    payload = read_payload
    context = { current_user: current_user }

    if payload.is_a?(Array)
      result = execute_batch(payload, context)
      status = :ok
    else
      result, status = execute_one(payload, context)
    end

    code = first_error_code(result)
    response.headers["X-GraphQL-Error-Code"] = code if code
    render json: JSON.generate(result), status: status
  rescue BadRequest => e
    render json: JSON.generate({ "errors" => [{ "message" => e.message }] }), status: :bad_request
  end

  private

  def current_user
    request.authorization == "Bearer good" ? Catalog::CURRENT_USER : nil
  end

  # Returns one operation Hash, or an Array of them (batch).
  def read_payload
    return operation_from(request.query_parameters) if request.get? || request.head?

    case request.media_type
    when "application/graphql"
      operation_from(request.query_parameters).merge("query" => request_body)
    when "multipart/form-data"
      multipart_payload
    when "application/x-www-form-urlencoded"
      operation_from(request.request_parameters)
    else # application/json and anything else
      parsed = parse_json(request_body, "body")
      case parsed
      when Array then parsed.map { |op| operation_from(op) }
      when Hash then operation_from(parsed)
      else raise BadRequest, "JSON body must be an object or an array"
      end
    end
  end

  def request_body
    io = request.body
    io.rewind if io.respond_to?(:rewind)
    io.read.to_s
  end

  def operation_from(hash)
    raise BadRequest, "each operation must be a JSON object" unless hash.is_a?(Hash)

    {
      "query" => hash["query"],
      "operationName" => hash["operationName"].presence,
      "variables" => ensure_hash(hash["variables"], "variables"),
      "extensions" => ensure_hash(hash["extensions"], "extensions"),
    }
  end

  # Variables/extensions may arrive as a Hash (JSON body) or a JSON string (GET, forms).
  def ensure_hash(value, what)
    case value
    when nil, "" then {}
    when String then ensure_hash(parse_json(value, what), what)
    when Hash then value.to_h
    when ActionController::Parameters then value.to_unsafe_h
    else raise BadRequest, "#{what} must be a JSON object"
    end
  end

  def parse_json(text, what)
    JSON.parse(text)
  rescue JSON::ParserError => e
    raise BadRequest, "invalid JSON in #{what}: #{e.message.lines.first&.strip}"
  end

  # https://github.com/jaydenseric/graphql-multipart-request-spec
  def multipart_payload
    form = request.request_parameters
    operations = parse_json(form["operations"].to_s, "operations")
    file_map = form["map"].present? ? parse_json(form["map"], "map") : {}
    raise BadRequest, "map must be a JSON object" unless file_map.is_a?(Hash)

    file_map.each do |key, paths|
      file = form[key] or raise BadRequest, "missing multipart file #{key.inspect}"
      Array(paths).each { |path| assign_path(operations, path.to_s.split("."), file) }
    end
    operations.is_a?(Array) ? operations.map { |op| operation_from(op) } : operation_from(operations)
  end

  def assign_path(target, segments, value)
    *parents, last = segments
    parents.each do |seg|
      target = target.is_a?(Array) ? target[Integer(seg)] : target[seg]
      raise BadRequest, "bad map path #{segments.join('.')}" unless target.is_a?(Hash) || target.is_a?(Array)
    end
    target.is_a?(Array) ? target[Integer(last)] = value : target[last] = value
  rescue ArgumentError, TypeError
    raise BadRequest, "bad map path #{segments.join('.')}"
  end

  def execute_one(op, context)
    query, error = PersistedQueryStore.resolve(op["query"], op["extensions"])
    return [error, error.equal?(PersistedQueryStore::HASH_MISMATCH) ? :bad_request : :ok] if error

    result = AppSchema.execute(query,
                               variables: op["variables"],
                               operation_name: op["operationName"],
                               context: context.merge(extensions: op["extensions"]))
    [result.to_h, :ok]
  end

  def execute_batch(ops, context)
    results = Array.new(ops.size)
    runnable = []
    ops.each_with_index do |op, i|
      query, error = PersistedQueryStore.resolve(op["query"], op["extensions"])
      if error
        results[i] = error
      else
        runnable << [i, { query: query, variables: op["variables"], operation_name: op["operationName"],
                          context: context.merge(extensions: op["extensions"]) }]
      end
    end
    return results if runnable.empty?

    AppSchema.multiplex(runnable.map(&:last)).each_with_index do |res, j|
      results[runnable[j].first] = res.to_h
    end
    results
  end

  def first_error_code(result)
    Array.wrap(result).each do |res|
      Array(res["errors"]).each do |err|
        code = err.is_a?(Hash) && err.dig("extensions", "code")
        return code.to_s if code
      end
    end
    nil
  end
end
