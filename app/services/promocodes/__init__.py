"""Promocodes for subscription plans (SPEC §3).

Modules: `pricing` (the pure price function), `generator` (unique codes in bulk), `codes`
(admin: create, update, deactivate, grant, stats, attempts), `purchases` (quote, reserve,
confirm, fail, release), `eligibility` (who may use which code).
"""
