"""`caffedoc fix`: apply the knowledge base's fix, journaled and undoable.

facts → findings → plan (`plan`, one planner per problem id) → apply under a
lock with a journal (`steps`, `engine`, `journal`, `state`) → check again.
"""
