"""The Course service: catalogue, lessons, quizzes and reports (`services.course.app:app`)."""
