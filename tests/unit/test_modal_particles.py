import pytest

from detectors import detect_agent_message, detect_modal_particles


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("哦，这个不知道", [(0, 1, "哦")]),
        ("好的哦亲", [(2, 3, "哦")]),
        ("嗯嗯，已经发货了", [(0, 2, "嗯嗯")]),
        ("恩，收到", [(0, 1, "恩")]),
        ("喂，还在吗", [(0, 1, "喂")]),
        ("哎，没办法", [(0, 1, "哎")]),
        ("这个啊，明天再说", [(2, 3, "啊")]),
        ("噢，好", [(0, 1, "噢")]),
        ("喔，知道了", [(0, 1, "喔")]),
        ("哦，好的哦", [(0, 1, "哦"), (4, 5, "哦")]),
    ],
)
def test_particles_used_as_words_are_found_with_their_spans(text: str, spans: list[tuple[int, int, str]]) -> None:
    findings = detect_modal_particles(text)
    assert [(f.start, f.end, f.matched) for f in findings] == spans
    assert all(f.label == "banned_word" and f.fatal and f.severity == "critical" for f in findings)


@pytest.mark.parametrize(
    "text",
    ["感恩您的支持", "我们是恩施的店铺", "这款喂食器可以定时", "喂养建议见说明书", "宝宝喂奶时间", "恩爱的情侣款",
     "您好，请问有什么可以帮您", "", "投喂口堵了可以清理"],
)
def test_particle_characters_inside_words_are_not_violations(text: str) -> None:
    assert detect_modal_particles(text) == []


def test_a_violation_next_to_an_exception_word_is_still_found() -> None:
    findings = detect_agent_message("感恩，哦")
    assert [(f.start, f.matched) for f in findings] == [(3, "哦")]
