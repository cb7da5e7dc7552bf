from __future__ import annotations

from datetime import datetime
from typing import Any

from cw.store.v1 import account_pb2, account_pb2_grpc
from store_service.api.convert import timestamp_to_datetime
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db import messages
from store_service.db.models import Account, utcnow
from store_service.domain.errors import NotFound
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork


class _AccountResource(Resource[account_pb2.Account]):
    def to_message(self, row: Any) -> account_pb2.Account:
        message = super().to_message(row)
        messages.show_presence(message, row, model=Account)  # a row read as a record too
        return message


# Secrets go in on Create and Update and never come back out, except through GetAccountSecrets.
ACCOUNT = _AccountResource(Account, account_pb2.Account, "account", lambda uow: uow.accounts, messages.hidden(Account))


def exhausted_as_read(account: account_pb2.Account, now: datetime) -> account_pb2.Account:
    """`is_exhausted` as it is now: a rest whose `exhausted_until` passed is over, though the row
    keeps the flag until the account is handed out again. Computed on the caller's own copy (the
    kept messages of shown_rows.py are shared and keyed by stored values, never by the clock)."""
    if account.is_exhausted and account.HasField("exhausted_until"):
        until = account.exhausted_until.ToDatetime()
        account.is_exhausted = until > now
    return account


class AccountServicer(ResourceServicer[account_pb2.Account], account_pb2_grpc.AccountServiceServicer):
    resource = ACCOUNT
    CreateAccount = ResourceServicer.create_rpc
    DeleteAccount = ResourceServicer.delete_rpc

    async def GetAccount(self, request: Any, context: Any = None) -> account_pb2.Account:
        return exhausted_as_read(await self.get_rpc(request, context), utcnow())

    async def UpdateAccount(self, request: Any, _context: Any = None) -> account_pb2.Account:
        return exhausted_as_read(await self.update_rpc(request), utcnow())

    async def ListAccounts(self, request: Any, _context: Any) -> account_pb2.ListAccountsResponse:
        accounts, token = await self.list_page(request, ["provider"])
        response = account_pb2.ListAccountsResponse(accounts=accounts, next_page_token=token)
        now = utcnow()
        for account in response.accounts:  # the response's own copies
            exhausted_as_read(account, now)
        return response

    async def GetNextAvailableAccount(self, request: Any, _context: Any) -> account_pb2.Account:
        provider = request.provider or "claude"

        def work(uow: SqlAlchemyUnitOfWork) -> account_pb2.Account:
            account = uow.accounts.find_next_available(provider)
            if account is None:
                raise NotFound("available account of provider", provider)
            return ACCOUNT.to_message(account)

        return await self.db.write(work)

    async def MarkAccountExhausted(self, request: Any, _context: Any) -> account_pb2.Account:
        account_id = required_id(request.id)
        until = timestamp_to_datetime(request.until) if request.HasField("until") else None
        marked = await self.db.write(lambda uow: ACCOUNT.to_message(uow.accounts.mark_exhausted(account_id, until)))
        return exhausted_as_read(marked, utcnow())

    async def ClearExpiredExhaustion(self, _request: Any, _context: Any) -> account_pb2.ClearExpiredExhaustionResponse:
        cleared = await self.db.write(lambda uow: uow.accounts.clear_expired_exhaustion())
        return account_pb2.ClearExpiredExhaustionResponse(cleared_count=cleared)

    def reveal(self, stored: str | None) -> str:
        """The one place a secret is decrypted (stored in plaintext when the store has no key)."""
        return self.db.secrets.open(stored) if self.db.secrets else stored or ""

    async def GetAccountSecrets(self, request: Any, _context: Any) -> account_pb2.GetAccountSecretsResponse:
        account_id = required_id(request.id)

        def work(uow: SqlAlchemyUnitOfWork) -> account_pb2.GetAccountSecretsResponse:
            account = uow.accounts.get(account_id)
            return account_pb2.GetAccountSecretsResponse(
                config_json=self.reveal(account.config_json), credentials=self.reveal(account.credentials)
            )

        return await self.db.read(work)
