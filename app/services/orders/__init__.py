"""The order stream: orders as the ordering service reports them, read by their consumers.

`recording` (`orderRecord`: store once, send to `recording.CONSUMERS`), `facts` (what an order
is: kinds, statuses, ride classes, payment methods, validated `OrderFacts`), `codes`,
`reading`, `metrics`, `privacy`. Orders are upstream: nothing here imports a consumer.
"""
