"""Running a job: atomic writes and JSON (``io``), file and JSON hashes (``hashing``), logs and
progress output, memory, the job's scheduler environment, git state, test pause points. The lowest
layer: it imports no other part of specvit.
"""
