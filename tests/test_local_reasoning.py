"""Reasoning passed back to a local model's own template: `reasoning_content` on the assistant
messages of the tool chain (Qwen3, DeepSeek-R1, GLM read it), `thinking` for gpt-oss."""

from __future__ import annotations

from toolchat.backends.base import Reasoning
from toolchat.backends.parsers.reasoning import opens_thinking
from toolchat.backends.prompt import JinjaTemplate

# A Qwen3-style template, written for this test: an assistant message renders its reasoning in
# <think> ahead of its content, and the generation prompt opens <think> when asked to think.
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.role == 'assistant' and m.reasoning_content %}<think>\n{{ m.reasoning_content }}\n</think>\n\n{% endif %}"
    "{{ m.content or '' }}{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }}"
    "</tool_call>{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


def test_the_reasoning_of_a_tool_chain_reaches_the_template_and_the_prompt_opens_think():
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [call],
            "reasoning": Reasoning("I should look it up.").as_entry(),
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    prompt = JinjaTemplate(TEMPLATE, "", "<|im_end|>").render(messages, [])
    assert "<think>\nI should look it up.\n</think>\n\n<tool_call>get_weather</tool_call>" in prompt
    assert "{'text'" not in prompt  # toolchat's own entry never reaches the template as is
    assert opens_thinking(prompt)
    assert not opens_thinking(prompt + "\n</think>\n\n")
