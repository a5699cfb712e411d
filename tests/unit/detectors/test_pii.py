"""信息泄露 (pii_leak): formats, validators, context, the shop's own data and the buyer's read-back.

Every number below is made up. Card numbers are checked against Luhn and ID numbers against the
GB 11643 check digit first, so a test cannot pass because a number happens to be invalid.
"""

from __future__ import annotations

import pytest

from detectors import Detector, RuleSetError, load_ruleset, parse_ruleset
from detectors.normalise import Normaliser
from detectors.ruleset import labels_of
from detectors.validators import id_card, luhn

SEED = load_ruleset()
DETECTOR = Detector(SEED)

CARD16 = "6217884370374244"  # Luhn-valid
CARD19 = "6228797891024485948"  # Luhn-valid, 19 digits (UnionPay)
BAD19 = "6212075592004871830"  # fails Luhn
ICBC = "9558567334348853553"  # Luhn-valid, an ICBC 9558… card
SERIAL16 = "5311081614099169"  # Luhn-valid, used as a serial
SERIAL19 = "4015800102564903862"  # Luhn-valid, used as a serial
ID = "330106199302080618"  # valid check digit
ID_X = "53010219870609313X"
ID_SERIAL = "110105200103151231"  # passes the ID check, used as a serial


def test_the_numbers_are_what_the_tests_say() -> None:
    assert all(luhn(n) for n in (CARD16, CARD19, ICBC, SERIAL16, SERIAL19))
    assert not luhn(BAD19)
    assert all(id_card(n) for n in (ID, ID_X, ID_SERIAL))


def leaks(text: str) -> bool:
    return "pii_leak" in labels_of(DETECTOR.detect(text, "agent"))


def pii(text: str) -> list[tuple[str, str]]:
    return [(f.rule_id, f.matched) for f in DETECTOR.detect(text, "agent") if f.label == "pii_leak"]


@pytest.mark.parametrize(
    "text",
    [
        "收件人的手机号是13812345678，您直接联系他吧",
        "这位买家留的电话：155 2011 6410",
        "他的电话是150-5750-0407",
        "对方号码１８８９３３７９１５６",  # full-width digits
        "这个包裹收件人手机+86 138 1234 5678",
        "买家手机号：+8613812345678",
        "对方手机(+86)139-2756-8041",
        "收件人手机138—1234—5678",  # em dashes
        "收件人号码：一三九 二七五六 八零四一",  # Chinese numerals
        "她下单用的号码幺三八 一二三四 五六七八",  # 幺 for 1
        "他留的号是一三八八八六六七七九九",  # repeated numerals are not collapsed
        "号码是139二七五六8041，是下单那位的",  # mixed
        "号码前三位139，中间4821，后四位0375，是下单那位的",  # split across words
        "号码前面是139，中间是4821，尾号0375",
        "这是他的vx13812345678",  # glued to vx
        "这是我们主管的私人手机15947471200，您直接找她",  # a colleague's private number
    ],
)
def test_mobile_numbers_in_every_writing(text: str) -> None:
    assert leaks(text), text


def test_a_number_in_chinese_numerals_is_highlighted_as_written() -> None:
    text = "收件人号码：一三九 二七五六 八零四一"
    assert pii(text) == [("pii_leak.mobile", "一三九 二七五六 八零四一")]


@pytest.mark.parametrize(
    "text",
    [
        "您的订单号13812345678已经发货",
        "订单号码13812345678，请您核对",  # 号码 inside 订单号码 does not count as a phone word
        "快递单号：13800001111，可以在官网查询",
        "京东订单号是13912345678，已经拦截成功",
        "快递员电话13812345678，他说十分钟后到",  # the courier's work phone
        "配送员的手机是131 8687 0914，您可以直接联系他改时间",
        "我们售后电话13812345678，工作日都有人接",  # the shop's own line
        "这是我们官方的客服手机13912345678",
        "收件人电话138****5678，是您本人对吗",  # masked
        "虚拟号193****4987转5506，快递员会打这个",
        "请您提供一下手机号后四位，方便核实身份",
        "尺码有160 165 170 175 180，您身高多少呢",
        "价格139元，销量4821件，好评0375",
    ],
)
def test_numbers_that_are_not_a_persons_mobile(text: str) -> None:
    assert not leaks(text), pii(text)


def test_a_phone_word_nearer_than_the_order_word_keeps_the_leak() -> None:
    # context_keep: 订单 clears a number only if no word of the person's data stands between them
    assert leaks("订单上的联系人是王女士，手机18884442056")
    assert leaks("运单上的收件人电话是187 3406 2904，您看看认不认识")
    assert not leaks("订单18884442056已经签收")


@pytest.mark.parametrize(
    "text",
    [
        "收件人家里座机0571-86573421，白天有人接",
        "对方留的固话是(020)38826619",
        "收件人单位电话 010-62751234 转 8021",
        "收件人电话(0571)8657 3421",
        "寄件人是李先生，0571-86573421",  # no word before it: the area code and dash say it
    ],
)
def test_landlines_of_a_person(text: str) -> None:
    assert leaks(text), text


@pytest.mark.parametrize(
    "text",
    [
        "这是快递网点电话0755-23456789，您有问题可以问网点",
        "如需开发票请拨打财务电话021-64881234",
        "门店电话0571-87654321，到店前可以先打电话问库存",
        "工作时间9点到18点，电话0571-88886666",
        "品牌售后热线400-820-1688，工作日9点到18点",
    ],
)
def test_the_shops_landlines_are_not_leaks(text: str) -> None:
    assert not leaks(text), pii(text)


@pytest.mark.parametrize(
    "text",
    [
        f"您朋友的身份证号是{ID}",
        f"实名信息显示身份证{ID_X}，姓名张伟",
        f"收件人证件号{ID[:6]} {ID[6:14]} {ID[14:]}，清关会用到",
        f"他的身份证号是{ID[:4]} {ID[4:8]} {ID[8:12]} {ID[12:16]} {ID[16:]}",  # grouped by four
        "他身份证号是三三零一零六一九九三零二零八零六一八",  # Chinese numerals
        f"订单号下面那行是收件人身份证{ID}",  # 身份证 nearer than 订单
        f"您的身份证号是{ID}吗",  # a bare question is no confirmation of the buyer's record
    ],
)
def test_id_numbers(text: str) -> None:
    assert leaks(text), text


@pytest.mark.parametrize(
    "text",
    [
        f"支付流水号{ID_SERIAL}，这个是系统生成的",  # an 18-digit serial that passes the check digit
        f"售后编号{ID_SERIAL}，请您保存好",
        f"产品批号{ID_SERIAL}，在有效期内",
        f"纳税人识别号{ID_SERIAL}，您核对一下开票信息",
        "实名信息4101**********6650，显示已认证",
        "110101199013070011",  # month 13: not a date, not an ID
    ],
)
def test_id_shaped_numbers_that_are_not_ids(text: str) -> None:
    assert not leaks(text), pii(text)


@pytest.mark.parametrize(
    "text",
    [
        f"顾客的银行卡号是{CARD16}",
        f"打款账户：{CARD16[:4]} {CARD16[4:8]} {CARD16[8:12]} {CARD16[12:]}，开户行招商银行",
        f"银行卡号{BAD19}，是那位顾客提供的",  # fails Luhn: the context alone says it is a card
        f"收款账户：{BAD19}，开户行建设银行",
        f"卡号是工商银行{BAD19}",
        f"退款打到{BAD19}，户名周婷",  # context after the number
        f"他的{ICBC}是工行卡",
        f"{ICBC}是他的银行卡",
        f"那位买家的信用卡号是{CARD19}",
    ],
)
def test_bank_cards(text: str) -> None:
    assert leaks(text), text


@pytest.mark.parametrize(
    "text",
    [
        f"退款流水号{SERIAL19}，可以在银行查询",
        f"商户单号{SERIAL16}，您给银行客服报这个就行",
        f"快递单号YT{SERIAL16}，圆通快递",  # glued to a tracking prefix
        f"圆通 {SERIAL16}，今天派送",
        f"韵达快递：{SERIAL16}",
        f"京东E卡卡号{SERIAL16}，已发到您的账户",
        f"会员卡号{SERIAL16}，积分已经加上了",
        f"防伪码{SERIAL16}，刮开后在官网验证",
        f"我们的对公账户：{CARD19}，户名杭州某某贸易有限公司",  # the shop's corporate account
        f"SIM卡号{CARD19}",  # whatever its digits
        "SIM卡号8986001234567890123",
        "退款已原路退回尾号为6222 **** **** 6427的银行卡",
    ],
)
def test_card_shaped_numbers_that_are_not_a_persons_card(text: str) -> None:
    assert not leaks(text), pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "收货人地址是浙江省杭州市西湖区文三路259号昌地火炬大厦1号楼1205室",
        "收货地址为天津市南开区 卫津路 94 号 7-2-301",
        "原收件人地址是四川省绵阳市涪城区临园路东段59号4单元702，您确定要改成您那边吗",
        "她的地址是福建省厦门市思明区湖滨南路388号国贸大厦15楼1508",  # 厦门市 holds 门市: not a shop
        "买家住在成都市武侯区，具体是桂溪街道天府三街199号，5栋1单元2302",
        "收货人地址：杭州市，西湖区，古墩路88号",  # split by commas
        "收件人在上海市徐汇区漕溪北路123弄4号302室，是他",
        "收件地址是河南省周口市淮阳区白楼镇王庄村3组12号",
        "收件人地址：福州市鼓楼区五四路１２号３栋５０２",  # full-width
        "对方家住丽景小区3栋2单元501，在银川市兴庆区",
    ],
)
def test_addresses_of_a_person(text: str) -> None:
    assert leaks(text), text


@pytest.mark.parametrize(
    "text",
    [
        "我们的发货地址是广东省东莞市长安镇锦厦社区振安中路132号，仓库直发",
        "退货地址：浙江省金华市义乌市稠城街道工人北路1108号3楼，收件人售后部",
        "请寄至我们售后：湖北省武汉市汉阳区龙阳大道307号3栋1002",  # two patterns, one decision
        "厂家维修中心地址在深圳市宝安区西乡街道322号9栋1602",
        "地址在杭州市西湖区文三路88号1502室，欢迎到店自提",  # the shop's words after the address
        "我们在广州市白云区太和镇大源南路88号3栋501，欢迎来看货",
        "您的快递放在菜鸟驿站了，驿站在小区东门12号商铺",
    ],
)
def test_the_shops_addresses_are_not_leaks(text: str) -> None:
    assert not leaks(text), pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "跟您核对一下，您预留的收货电话是13343081027，对吗？",
        "确认下您本人的收货地址：江苏省苏州市工业园区星湖街328号创意产业园10栋，对吗",
        "核对一下收件信息：收件人张先生，电话18865107820，地址不变，您看对吗？",
        "收件人李女士，电话18865107820，上海市长宁区延安西路88号3号楼502室，对吗？",  # a strong cue needs no 您
        "您本人的手机号13812345678，快递员会打这个号",
        "您留的邮箱zhangwei88@163.com，对吗？发票会发过去",
        f"跟您核对一下，您的身份证号是{ID}，对吗",  # ID: the buyer's own record and a confirmation
        f"跟您核对一下，您绑定的银行卡号是{CARD16}，对吗",
    ],
)
def test_reading_the_buyers_own_data_back_is_not_a_leak(text: str) -> None:
    assert not leaks(text), pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "哦，下单人身份证500106200003183913，您核对下是不是您家人",  # someone else's order
        "那位先生的身份证号430104199305089467，您帮他确认下信息",
        "原收件人手机号13812345678，改派前请先和他确认一下",
        "跟您核对一下，您朋友预留的号码是13812345678，对吗",
        "收件人电话13812345678，您确认下是不是您朋友",
        "广州市天河区阳光花园3栋2单元501，是这个地址吗",  # a weak cue without 您: not a read-back to the buyer
        f"收件人身份证{ID} 已经核对",  # not the buyer's own record
    ],
)
def test_a_read_back_about_someone_else_is_a_leak(text: str) -> None:
    assert leaks(text), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("对方的邮箱是zhang_wei88@163.com", True),
        ("下单人留的邮箱：lucky.jing@qq.com", True),
        ("我们的客服邮箱是service2024@163.com，售后问题也可以发邮件", False),
        ("请把开票信息发到财务邮箱 invoice01@163.com", False),
        ("那位买家的微信号是xiaomei_2020", True),
        ("对方QQ：123456789", True),
        ("加我私人微信，私下给您便宜", True),
        ("这个是我们店铺的微信公众号，搜索店铺名就能关注", False),
    ],
)
def test_email_and_private_contacts(text: str, expected: bool) -> None:
    assert leaks(text) is expected, pii(text)


def test_chinese_numerals_are_never_collapsed_as_repeats() -> None:
    normalise = Normaliser()
    assert normalise("一三八八八 二二七七").text == "一三八八八 二二七七"
    assert normalise("谢谢谢谢").text == "谢"  # other repeats still collapse


def test_readback_fields_are_validated() -> None:
    document = dict(SEED.document)
    document["rules"] = [*SEED.document["rules"], {
        "id": "pii_leak.x", "label": "pii_leak", "patterns": ["\\d{11}"], "third_party_pattern": "他",
    }]
    with pytest.raises(RuleSetError, match="third_party_pattern only qualifies a readback_pattern"):
        parse_ruleset(document)
    document["rules"] = [*SEED.document["rules"], {
        "id": "pii_leak.x", "label": "pii_leak", "patterns": ["\\d{11}"], "readback_pattern": "(核对",
    }]
    with pytest.raises(RuleSetError, match="invalid regular expression"):
        parse_ruleset(document)


def test_a_shop_can_add_its_own_context_words() -> None:
    document = dict(SEED.document)
    document["shops"] = {"shop-x": {"rules": [{"id": "pii_leak.mobile", "add_context_exceptions": ["团购群"]}]}}
    shop = Detector(parse_ruleset(document).for_shop("shop-x"))
    text = "团购群13812345678"
    assert "pii_leak" not in labels_of(shop.detect(text, "agent"))
    assert leaks(text)


def test_pii_rules_apply_to_agents_only() -> None:
    assert DETECTOR.detect("我的手机号是13812345678，麻烦快递员打这个", "customer") == []
