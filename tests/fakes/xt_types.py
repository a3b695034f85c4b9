"""The data shapes of the fake xtquant trading side: ``xtconstant`` values and ``xttype`` classes.

``_XtConstant`` (alias ``C``, dict ``XTCONSTANT``) holds the values of xtquant 250807's ``xtconstant.py``
that a stock/option client uses, and ``StockAccount`` ... ``XtAccountStatus`` (``XTTYPE_CLASSES``)
mirror its ``xttype.py`` classes with the same constructors and attributes; the fidelity tests compare
both against an installed xtquant. Also here: the fake broker's own records (``Request``, ``Push``,
``BrokerOrder``, ``BrokerTrade``, ``BrokerPosition``), the status groups and price-type codes the
broker reports, and ``TIMEOUT``, the longest wait on a callback thread. No behaviour, no state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 5.0  # no wait on a callback thread lasts longer than this


# --------------------------------------------------------------------------------------------------
# xtconstant: the values of xtquant 250807's xtconstant.py (the parts a stock/option client uses)
# --------------------------------------------------------------------------------------------------
class _XtConstant:
    # 账号类型
    FUTURE_ACCOUNT = 1
    SECURITY_ACCOUNT = 2
    CREDIT_ACCOUNT = 3
    FUTURE_OPTION_ACCOUNT = 5
    STOCK_OPTION_ACCOUNT = 6
    HUGANGTONG_ACCOUNT = 7
    INCOME_SWAP_ACCOUNT = 8
    NEW3BOARD_ACCOUNT = 10
    SHENGANGTONG_ACCOUNT = 11
    AT_OFFSITEBANKING = 13
    AT_OUTTER_FUTURE = 1001
    AT_IB = 1002
    AT_NS_TRUSTBANK = 15001
    AT_INTERBANK = 15002
    AT_BANK = 15003
    AT_OTC = 15005
    ACCOUNT_TYPE_DICT = {
        FUTURE_ACCOUNT: 'FUTURE', SECURITY_ACCOUNT: 'STOCK', CREDIT_ACCOUNT: 'CREDIT',
        FUTURE_OPTION_ACCOUNT: 'FUTURE_OPTION', STOCK_OPTION_ACCOUNT: 'STOCK_OPTION',
        HUGANGTONG_ACCOUNT: 'HUGANGTONG', SHENGANGTONG_ACCOUNT: 'SHENGANGTONG', NEW3BOARD_ACCOUNT: 'NEW3BOARD',
        INCOME_SWAP_ACCOUNT: 'INCOME_SWAP', AT_OFFSITEBANKING: 'OFFSITEBANKING', AT_OUTTER_FUTURE: 'OUTTER_FUTURE',
        AT_IB: 'IB', AT_NS_TRUSTBANK: 'NS_TRUSTBANK', AT_INTERBANK: 'INTERBANK', AT_BANK: 'BANK', AT_OTC: 'OTC',
    }

    # 委托类型: futures
    FUTURE_OPEN_LONG = 0
    FUTURE_CLOSE_LONG_HISTORY = 1
    FUTURE_CLOSE_LONG_TODAY = 2
    FUTURE_OPEN_SHORT = 3
    FUTURE_CLOSE_SHORT_HISTORY = 4
    FUTURE_CLOSE_SHORT_TODAY = 5
    FUTURE_CLOSE_LONG_TODAY_FIRST = 6
    FUTURE_CLOSE_LONG_HISTORY_FIRST = 7
    FUTURE_CLOSE_SHORT_TODAY_FIRST = 8
    FUTURE_CLOSE_SHORT_HISTORY_FIRST = 9
    FUTURE_CLOSE_LONG_TODAY_HISTORY_THEN_OPEN_SHORT = 10
    FUTURE_CLOSE_LONG_HISTORY_TODAY_THEN_OPEN_SHORT = 11
    FUTURE_CLOSE_SHORT_TODAY_HISTORY_THEN_OPEN_LONG = 12
    FUTURE_CLOSE_SHORT_HISTORY_TODAY_THEN_OPEN_LONG = 13
    FUTURE_OPEN = 14
    FUTURE_CLOSE = 15
    # 股票期权
    STOCK_OPTION_BUY_OPEN = 48
    STOCK_OPTION_SELL_CLOSE = 49
    STOCK_OPTION_SELL_OPEN = 50
    STOCK_OPTION_BUY_CLOSE = 51
    STOCK_OPTION_COVERED_OPEN = 52
    STOCK_OPTION_COVERED_CLOSE = 53
    STOCK_OPTION_CALL_EXERCISE = 54
    STOCK_OPTION_PUT_EXERCISE = 55
    STOCK_OPTION_SECU_LOCK = 56
    STOCK_OPTION_SECU_UNLOCK = 57
    # ETF申赎
    ETF_PURCHASE = 134
    ETF_REDEMPTION = 135
    # 股票 / 信用
    STOCK_BUY = 23
    STOCK_SELL = 24
    CREDIT_BUY = 23
    CREDIT_SELL = 24
    CREDIT_FIN_BUY = 27
    CREDIT_SLO_SELL = 28
    CREDIT_BUY_SECU_REPAY = 29
    CREDIT_DIRECT_SECU_REPAY = 30
    CREDIT_SELL_SECU_REPAY = 31
    CREDIT_DIRECT_CASH_REPAY = 32
    CREDIT_FIN_BUY_SPECIAL = 40
    CREDIT_SLO_SELL_SPECIAL = 41
    CREDIT_BUY_SECU_REPAY_SPECIAL = 42
    CREDIT_DIRECT_SECU_REPAY_SPECIAL = 43
    CREDIT_SELL_SECU_REPAY_SPECIAL = 44
    CREDIT_DIRECT_CASH_REPAY_SPECIAL = 45

    # 报价类型
    LATEST_PRICE = 5
    FIX_PRICE = 11
    MARKET_BEST = 18
    MARKET_CANCEL = 19
    MARKET_CANCEL_ALL = 20
    MARKET_CANCEL_1 = 21
    MARKET_CANCEL_5 = 22
    MARKET_CONVERT_1 = 23
    MARKET_CONVERT_5 = 24
    MARKET_SH_CONVERT_5_CANCEL = 42
    MARKET_SH_CONVERT_5_LIMIT = 43
    MARKET_PEER_PRICE_FIRST = 44
    MARKET_MINE_PRICE_FIRST = 45
    MARKET_SZ_INSTBUSI_RESTCANCEL = 46
    MARKET_SZ_CONVERT_5_CANCEL = 47
    MARKET_SZ_FULL_OR_CANCEL = 48

    # 市场类型
    SH_MARKET = 0
    SZ_MARKET = 1
    MARKET_ENUM_BEIJING = 70
    MARKET_ENUM_SHANGHAI_FUTURE = 3
    MARKET_ENUM_DALIANG_FUTURE = 4
    MARKET_ENUM_ZHENGZHOU_FUTURE = 5
    MARKET_ENUM_INDEX_FUTURE = 2
    MARKET_ENUM_INTL_ENERGY_FUTURE = 6
    MARKET_ENUM_GUANGZHOU_FUTURE = 75
    MARKET_ENUM_SHANGHAI_STOCK_OPTION = 7
    MARKET_ENUM_SHENZHEN_STOCK_OPTION = 67
    MARKET_SHANGHAI = 'SH'
    MARKET_SHENZHEN = 'SZ'
    MARKET_BEIJING = 'BJ'
    MARKET_SHANGHAI_FUTURE = 'SF'
    MARKET_DALIANG_FUTURE = 'DF'
    MARKET_ZHENGZHOU_FUTURE = 'ZF'
    MARKET_INDEX_FUTURE = 'IF'
    MARKET_INTL_ENERGY_FUTURE = 'INE'
    MARKET_GUANGZHOU_FUTURE = 'GF'
    MARKET_SHANGHAI_STOCK_OPTION = 'SHO'
    MARKET_SHENZHEN_STOCK_OPTION = 'SZO'
    MARKET_STR_TO_ENUM_MAPPING = {
        MARKET_SHANGHAI: SH_MARKET, MARKET_SHENZHEN: SZ_MARKET, MARKET_BEIJING: MARKET_ENUM_BEIJING,
        MARKET_SHANGHAI_FUTURE: MARKET_ENUM_SHANGHAI_FUTURE, MARKET_DALIANG_FUTURE: MARKET_ENUM_DALIANG_FUTURE,
        MARKET_ZHENGZHOU_FUTURE: MARKET_ENUM_ZHENGZHOU_FUTURE, MARKET_INDEX_FUTURE: MARKET_ENUM_INDEX_FUTURE,
        MARKET_INTL_ENERGY_FUTURE: MARKET_ENUM_INTL_ENERGY_FUTURE, MARKET_GUANGZHOU_FUTURE: MARKET_ENUM_GUANGZHOU_FUTURE,
        MARKET_SHANGHAI_STOCK_OPTION: MARKET_ENUM_SHANGHAI_STOCK_OPTION,
        MARKET_SHENZHEN_STOCK_OPTION: MARKET_ENUM_SHENZHEN_STOCK_OPTION,
    }

    # 委托状态
    ORDER_UNREPORTED = 48
    ORDER_WAIT_REPORTING = 49
    ORDER_REPORTED = 50
    ORDER_REPORTED_CANCEL = 51
    ORDER_PARTSUCC_CANCEL = 52
    ORDER_PART_CANCEL = 53
    ORDER_CANCELED = 54
    ORDER_PART_SUCC = 55
    ORDER_SUCCEEDED = 56
    ORDER_JUNK = 57
    ORDER_UNKNOWN = 255

    # 账号状态
    ACCOUNT_STATUS_INVALID = -1
    ACCOUNT_STATUS_OK = 0
    ACCOUNT_STATUS_WAITING_LOGIN = 1
    ACCOUNT_STATUSING = 2
    ACCOUNT_STATUS_FAIL = 3
    ACCOUNT_STATUS_INITING = 4
    ACCOUNT_STATUS_CORRECTING = 5
    ACCOUNT_STATUS_CLOSED = 6
    ACCOUNT_STATUS_ASSIS_FAIL = 7
    ACCOUNT_STATUS_DISABLEBYSYS = 8
    ACCOUNT_STATUS_DISABLEBYUSER = 9

    # 多空 / 交易操作
    DIRECTION_FLAG_BUY = 48
    DIRECTION_FLAG_SELL = 49
    DIRECTION_FLAG_LONG = 48
    DIRECTION_FLAG_SHORT = 49
    OFFSET_FLAG_OPEN = 48
    OFFSET_FLAG_CLOSE = 49
    OFFSET_FLAG_FORCECLOSE = 50
    OFFSET_FLAG_CLOSETODAY = 51
    OFFSET_FLAG_ClOSEYESTERDAY = 52
    OFFSET_FLAG_FORCEOFF = 53
    OFFSET_FLAG_LOCALFORCECLOSE = 54


XTCONSTANT: dict[str, Any] = {k: v for k, v in vars(_XtConstant).items() if not k.startswith("_")}
C = _XtConstant
FINAL_STATUSES = {C.ORDER_PART_CANCEL, C.ORDER_CANCELED, C.ORDER_SUCCEEDED, C.ORDER_JUNK}
CANCEL_PENDING = {C.ORDER_REPORTED_CANCEL, C.ORDER_PARTSUCC_CANCEL}
# What MiniQMT reports in XtOrder.price_type for what was sent. vnpy_xt observed 50 for limit and 88
# for market orders ("限价返回50，市价返回88"); LATEST_PRICE -> 50 is the fake's assumption.
REPORTED_PRICE_TYPES = {C.FIX_PRICE: 50, C.LATEST_PRICE: 50}
MARKET_PRICE_TYPE_REPORTED = 88
ORDER_ERROR_ID = -61  # error_id of counter rejections as seen in MiniQMT reports (vnpy_xt only logs it)


# --------------------------------------------------------------------------------------------------
# xttype: xtquant 250807's xttype.py classes (same constructors, same attributes)
# --------------------------------------------------------------------------------------------------
class StockAccount(object):
    """定义证券账号类, 用于证券账号的报撤单等"""

    def __new__(cls, account_id, account_type='STOCK'):
        if not isinstance(account_id, str):
            return u"资金账号必须为字符串类型"
        return super(StockAccount, cls).__new__(cls)

    def __init__(self, account_id, account_type='STOCK'):
        account_type = account_type.upper()
        for int_type, str_type in C.ACCOUNT_TYPE_DICT.items():
            if account_type == str_type:
                self.account_type = int_type
                self.account_id = account_id
                return
        raise Exception("不支持的账号类型：{}！".format(account_type))


class XtAsset(object):
    def __init__(self, account_id, cash, frozen_cash, market_value, total_asset, fetch_balance):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cash = cash
        self.frozen_cash = frozen_cash
        self.market_value = market_value
        self.total_asset = total_asset
        self.fetch_balance = fetch_balance


class XtOrder(object):
    def __init__(self, account_id, stock_code,
                 order_id, order_sysid, order_time, order_type, order_volume,
                 price_type, price, traded_volume, traded_price,
                 order_status, status_msg, strategy_name, order_remark, direction, offset_flag,
                 secu_account, instrument_name):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtTrade(object):
    def __init__(self, account_id, stock_code,
                 order_type, traded_id, traded_time, traded_price, traded_volume, traded_amount,
                 order_id, order_sysid, strategy_name, order_remark, direction, offset_flag,
                 commission, secu_account, instrument_name):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_type = order_type
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.traded_amount = traded_amount
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.commission = commission
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtPosition(object):
    def __init__(self, account_id, stock_code,
                 volume, can_use_volume, open_price, market_value,
                 frozen_volume, on_road_volume, yesterday_volume, avg_price, direction,
                 last_price, profit_rate, secu_account, instrument_name):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.volume = volume
        self.can_use_volume = can_use_volume
        self.open_price = open_price
        self.market_value = market_value
        self.frozen_volume = frozen_volume
        self.on_road_volume = on_road_volume
        self.yesterday_volume = yesterday_volume
        self.avg_price = avg_price
        self.direction = direction
        self.last_price = last_price
        self.profit_rate = profit_rate
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtOrderError(object):
    """The native object also carries ``seq`` (the request's sequence number); the fake sets it too."""

    def __init__(self, account_id, order_id,
                 error_id=None, error_msg=None,
                 strategy_name=None, order_remark=None):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.error_id = error_id
        self.error_msg = error_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark


class XtCancelError(object):
    def __init__(self, account_id, order_id, market, order_sysid,
                 error_id=None, error_msg=None):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.market = market
        self.order_sysid = order_sysid
        self.error_id = error_id
        self.error_msg = error_msg


class XtOrderResponse(object):
    def __init__(self, account_id, order_id, strategy_name, order_remark, error_msg, seq):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtCancelOrderResponse(object):
    def __init__(self, account_id, cancel_result, order_id, order_sysid, seq, error_msg):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cancel_result = cancel_result
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.seq = seq
        self.error_msg = error_msg


class XtAccountStatus(object):
    def __init__(self, account_id, account_type, status):
        self.account_type = account_type
        self.account_id = account_id
        self.status = status


XTTYPE_CLASSES = (StockAccount, XtAsset, XtOrder, XtTrade, XtPosition, XtOrderError, XtCancelError,
                  XtOrderResponse, XtCancelOrderResponse, XtAccountStatus)


# --------------------------------------------------------------------------------------------------
# The simulated broker's records
# --------------------------------------------------------------------------------------------------
@dataclass
class Request:
    kind: str
    session: int
    args: dict[str, Any]
    thread: str
    dropped: bool = False  # the client was not connected: the request never reached the broker


@dataclass
class Push:
    session: int
    name: str       # callback name, e.g. "on_stock_order", or the query kind for query answers
    thread: str     # the thread it was delivered on
    payload: Any


@dataclass
class BrokerOrder:
    order_id: int
    account_id: str
    stock_code: str
    order_type: int
    order_volume: int
    price_type: int
    price: float
    strategy_name: str
    order_remark: str
    session: int | None     # None: placed outside any fake client (place_external)
    order_time: int
    order_sysid: str = ""
    status: int = C.ORDER_UNREPORTED
    status_msg: str = ""
    traded_volume: int = 0
    traded_amount: float = 0.0
    frozen_cash: float = 0.0
    cancel_session: int | None = None
    statuses: list[int] = field(default_factory=list)  # every status it went through

    @property
    def buy(self) -> bool:
        return self.order_type == C.STOCK_BUY

    @property
    def remaining(self) -> int:
        return self.order_volume - self.traded_volume

    @property
    def traded_price(self) -> float:
        return self.traded_amount / self.traded_volume if self.traded_volume else 0.0

    @property
    def market(self) -> int:
        return C.MARKET_STR_TO_ENUM_MAPPING.get(self.stock_code.rsplit(".", 1)[-1], -1)


@dataclass
class BrokerTrade:
    traded_id: str
    order: BrokerOrder
    price: float
    volume: int
    traded_time: int
    commission: float


@dataclass
class BrokerPosition:
    stock_code: str
    volume: int = 0
    can_use_volume: int = 0
    frozen_volume: int = 0
    yesterday_volume: int = 0
    open_price: float = 0.0
    on_road_volume: int = 0
