"""The order stream: orders as the ordering service reports them, read by their consumers.

`recording` (`orderRecord`, `orderRecordBatch`: store once, mark pending), `queue` (the
order rows are the consumer's queue: one job per request for users with none scheduled),
`facts` (what an order is: kinds, statuses, ride classes, payment methods, validated
`OrderFacts`), `codes`, `reading`, `metrics`, `privacy`. Orders are upstream: nothing here
imports a consumer; consumers are named by actor (`queue.CONSUMER`).
"""
