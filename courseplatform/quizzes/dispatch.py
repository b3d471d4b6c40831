"""The names the quizzes app sends engine work by. Code answers and checks are kinds of the one
grading path (courseplatform/grading): services.py queues them with grading.jobs.enqueue(kind name,
...), which sends the kind's task once the transaction commits; tasks.py defines the kinds and is
registered by QuizzesConfig.ready(), so services.py never imports tasks.py."""
from __future__ import annotations

QUIZ_ANSWER_KIND = "quiz-answer"
QUIZ_CHECK_KIND = "quiz-check"
GRADE_CODE_ANSWER = "quizzes.grade_code_answer"
RUN_CODE_CHECK = "quizzes.run_code_check"
