"""The conversation engine: pure, Faust-free processing of one conversation at a time.

``conversation`` applies events and timer ticks to a conversation's small typed ``state``
(``turns`` keeps the response-time figures incrementally), emitting ``records`` and alerts;
``tally`` folds per-agent credits exactly once; ``timers`` decides which ticks are due.
"""
