# frozen_string_literal: true
module Api
  module V1
    # GET  /api/v1/courses/:id
    # GET  /api/v1/users/:user_id/courses/:id
    # POST /api/v1/courses   {"title": "..."}  -> 201 (not persisted)
    class CoursesController < ApplicationController
      def show
        course = Catalog.find(params[:id])
        unless course
          return render json: { error: "not_found", message: "Course #{params[:id]} not found" }, status: :not_found
        end

        json = Catalog.course_json(course)
        json[:user_id] = params[:user_id] if params[:user_id]
        render json: json
      end

      def create
        title = params[:title].to_s
        if title.strip.empty?
          return render json: { error: "unprocessable_entity", message: "title can't be blank" },
                        status: :unprocessable_entity
        end

        course = Catalog.build(title)
        render json: Catalog.course_json(course), status: :created, location: "/api/v1/courses/#{course.id}"
      end
    end
  end
end
