"""promocodes: plans, codes, grants, purchases, usage ledger, attempts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:58:10.725579
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('plans',
    sa.Column('slug', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('duration_days', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('duration_days > 0', name=op.f('ck_plans_duration_positive')),
    sa.CheckConstraint('price_minor >= 0', name=op.f('ck_plans_price_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans')),
    sa.UniqueConstraint('slug', name=op.f('uq_plans_slug'))
    )
    op.create_table('promocodes',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('FIXED_PRICE', 'FREE', 'PERCENT', 'AMOUNT', name='promocodekind', native_enum=False, length=32), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('max_uses_per_user', sa.Integer(), nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('audience', sa.Enum('PUBLIC', 'GRANTED', name='audience', native_enum=False, length=32), nullable=False),
    sa.Column('eligibility', sa.Enum('ANY', 'NEVER_SUBSCRIBED', 'LAPSED', 'ACTIVE', name='subscribereligibility', native_enum=False, length=32), nullable=False),
    sa.Column('trial_days', sa.Integer(), nullable=False),
    sa.Column('discounted_cycles', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('batch_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("(kind <> 'FREE') OR (value = 0)", name=op.f('ck_promocodes_free_has_no_value')),
    sa.CheckConstraint("(kind <> 'PERCENT') OR (value BETWEEN 1 AND 100)", name=op.f('ck_promocodes_percent_between_1_and_100')),
    sa.CheckConstraint('discounted_cycles >= 1', name=op.f('ck_promocodes_discounted_cycles_positive')),
    sa.CheckConstraint('max_uses IS NULL OR max_uses >= 1', name=op.f('ck_promocodes_max_uses_positive')),
    sa.CheckConstraint('max_uses_per_user >= 1', name=op.f('ck_promocodes_max_uses_per_user_positive')),
    sa.CheckConstraint('trial_days >= 0', name=op.f('ck_promocodes_trial_days_not_negative')),
    sa.CheckConstraint('uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)', name=op.f('ck_promocodes_uses_within_limit')),
    sa.CheckConstraint('valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from', name=op.f('ck_promocodes_valid_window')),
    sa.CheckConstraint('value >= 0', name=op.f('ck_promocodes_value_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promocodes')),
    sa.UniqueConstraint('code', name=op.f('uq_promocodes_code'))
    )
    with op.batch_alter_table('promocodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promocodes_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_promocodes_valid_until'), ['valid_until'], unique=False)

    op.create_table('promocode_attempts',
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('promocode_id', sa.Uuid(), nullable=True),
    sa.Column('plan_id', sa.Uuid(), nullable=True),
    sa.Column('code_entered', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.Enum('QUOTE', 'PURCHASE', 'ADMIN_APPLY', name='attemptoperation', native_enum=False, length=32), nullable=False),
    sa.Column('reason', sa.Enum('NOT_FOUND', 'INACTIVE', 'NOT_STARTED', 'EXPIRED', 'EXHAUSTED', 'ALREADY_USED_BY_USER', 'NOT_ASSIGNED_TO_USER', 'PLAN_NOT_ELIGIBLE', 'SUBSCRIBER_NOT_ELIGIBLE', 'USER_NOT_ACTIVE', 'RATE_LIMITED', name='rejection', native_enum=False, length=32), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_promocode_attempts_plan_id_plans')),
    sa.ForeignKeyConstraint(['promocode_id'], ['promocodes.id'], name=op.f('fk_promocode_attempts_promocode_id_promocodes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_promocode_attempts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promocode_attempts'))
    )
    with op.batch_alter_table('promocode_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promocode_attempts_promocode_id'), ['promocode_id'], unique=False)
        batch_op.create_index('ix_promocode_attempts_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('promocode_grants',
    sa.Column('promocode_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('group_id', sa.Uuid(), nullable=True),
    sa.Column('granted_by', sa.String(length=100), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('(user_id IS NULL) <> (group_id IS NULL)', name=op.f('ck_promocode_grants_exactly_one_grantee')),
    sa.ForeignKeyConstraint(['group_id'], ['user_groups.id'], name=op.f('fk_promocode_grants_group_id_user_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['promocode_id'], ['promocodes.id'], name=op.f('fk_promocode_grants_promocode_id_promocodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_promocode_grants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promocode_grants')),
    sa.UniqueConstraint('promocode_id', 'group_id', name='uq_promocode_grants_code_group'),
    sa.UniqueConstraint('promocode_id', 'user_id', name='uq_promocode_grants_code_user')
    )
    with op.batch_alter_table('promocode_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promocode_grants_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_promocode_grants_promocode_id'), ['promocode_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_promocode_grants_user_id'), ['user_id'], unique=False)

    op.create_table('promocode_plans',
    sa.Column('promocode_id', sa.Uuid(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_promocode_plans_plan_id_plans'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['promocode_id'], ['promocodes.id'], name=op.f('fk_promocode_plans_promocode_id_promocodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('promocode_id', 'plan_id', name=op.f('pk_promocode_plans'))
    )
    op.create_table('purchases',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('promocode_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.Enum('PENDING', 'CONFIRMED', 'FAILED', name='purchasestatus', native_enum=False, length=32), nullable=False),
    sa.Column('list_price_minor', sa.Integer(), nullable=False),
    sa.Column('final_price_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('trial_days', sa.Integer(), nullable=False),
    sa.Column('discounted_cycles', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.String(length=200), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('final_price_minor >= 0 AND final_price_minor <= list_price_minor', name=op.f('ck_purchases_final_price_within_list_price')),
    sa.CheckConstraint('list_price_minor >= 0', name=op.f('ck_purchases_list_price_not_negative')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_purchases_plan_id_plans')),
    sa.ForeignKeyConstraint(['promocode_id'], ['promocodes.id'], name=op.f('fk_purchases_promocode_id_promocodes')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_purchases_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchases'))
    )
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchases_promocode_id'), ['promocode_id'], unique=False)
        batch_op.create_index('ix_purchases_user_status', ['user_id', 'status'], unique=False)

    op.create_table('promocode_uses',
    sa.Column('promocode_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('purchase_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('RESERVED', 'CONFIRMED', 'RELEASED', name='usestatus', native_enum=False, length=32), nullable=False),
    sa.Column('reserved_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.Enum('PAYMENT_FAILED', 'TIMEOUT', 'ADMIN', name='releasereason', native_enum=False, length=32), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['promocode_id'], ['promocodes.id'], name=op.f('fk_promocode_uses_promocode_id_promocodes')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_promocode_uses_purchase_id_purchases')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_promocode_uses_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promocode_uses')),
    sa.UniqueConstraint('purchase_id', name=op.f('uq_promocode_uses_purchase_id'))
    )
    with op.batch_alter_table('promocode_uses', schema=None) as batch_op:
        batch_op.create_index('ix_promocode_uses_holding', ['promocode_id', 'user_id'], unique=False, postgresql_where=sa.text("status <> 'RELEASED'"), sqlite_where=sa.text("status <> 'RELEASED'"))
        batch_op.create_index('ix_promocode_uses_reserved_until', ['reserved_until'], unique=False, postgresql_where=sa.text("status = 'RESERVED'"), sqlite_where=sa.text("status = 'RESERVED'"))



def downgrade() -> None:
    with op.batch_alter_table('promocode_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_promocode_uses_reserved_until', postgresql_where=sa.text("status = 'RESERVED'"), sqlite_where=sa.text("status = 'RESERVED'"))
        batch_op.drop_index('ix_promocode_uses_holding', postgresql_where=sa.text("status <> 'RELEASED'"), sqlite_where=sa.text("status <> 'RELEASED'"))

    op.drop_table('promocode_uses')
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.drop_index('ix_purchases_user_status')
        batch_op.drop_index(batch_op.f('ix_purchases_promocode_id'))

    op.drop_table('purchases')
    op.drop_table('promocode_plans')
    with op.batch_alter_table('promocode_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promocode_grants_user_id'))
        batch_op.drop_index(batch_op.f('ix_promocode_grants_promocode_id'))
        batch_op.drop_index(batch_op.f('ix_promocode_grants_group_id'))

    op.drop_table('promocode_grants')
    with op.batch_alter_table('promocode_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_promocode_attempts_user_created')
        batch_op.drop_index(batch_op.f('ix_promocode_attempts_promocode_id'))

    op.drop_table('promocode_attempts')
    with op.batch_alter_table('promocodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_promocodes_valid_until'))
        batch_op.drop_index(batch_op.f('ix_promocodes_batch_id'))

    op.drop_table('promocodes')
    op.drop_table('plans')
