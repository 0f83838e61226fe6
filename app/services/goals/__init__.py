"""Personal goals: templates with conditions and a bonus, user goals, order matching.

The pure rules live in `conditions` (what a goal asks for), `time_window`, `matching` (does an
order count, and if not, why) and `bonuses` (what a goal gives); they touch no database.
"""
