"""Promocodes for subscription plans (SPEC §3).

Modules: `pricing` (the pure price function), `generator` (unique codes in bulk), `codes`
(admin: plans; create, update, deactivate codes), `rules` (their inputs and pure checks),
`batches` (admin bulk generation), `grants`, `stats`; the purchase lifecycle: `quotes`
(prices, dry runs, the codes a user may use), `reservation` (`purchaseCreate`, the lean hot
path), `confirmation` (the payment result), `sweeping` (timed-out reservations), and
`purchases` re-exporting their entry points; `eligibility` (who may use which code),
`attempts` (rejections, their log and rate limits), `issuing` (admin-apply, personal bonus
codes), `reading` (the API's reads) and `errors` (the error codes, and what a client is told
of a rejection).
"""
