"""`caffedoc fix`: apply the remedies the rules give, journaled and undoable.

facts → findings → plan (`plan`: each finding's rule gives its remedy's steps) →
apply under a lock with a journal (`steps`, `engine`, `journal`, `state`) → check
again. This package is the mechanism only; what to do about a problem is its rule's
(caffedoc.detect).
"""
