package modelsim

import (
	"encoding/json"
	"hash/fnv"
)

// DefaultAnswer is the text of a completion whose prompt the behaviour has
// no answer for.
const DefaultAnswer = "simulated completion"

// WrongAnswer is what a server answers to a prompt it gets wrong.
const WrongAnswer = "I do not know."

// answer is the completion text for prompt: the behaviour's answer, or
// WrongAnswer for the share WrongAnswers of the prompts it knows, picked
// by a hash of the prompt so that a server answers each prompt the same
// way every time.
func (b Behaviour) answer(prompt string) string {
	a, ok := b.Answers[prompt]
	if !ok {
		return DefaultAnswer
	}
	if b.WrongAnswers > 0 {
		h := fnv.New64a()
		h.Write([]byte(prompt))
		if float64(h.Sum64()%1_000_000)/1_000_000 < b.WrongAnswers {
			return WrongAnswer
		}
	}
	return a
}

// promptOf reads the prompt of a completion request: its prompt, or the
// content of its last chat message; "" when the body has neither.
func promptOf(body []byte) string {
	var req struct {
		Prompt   json.RawMessage `json:"prompt"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	var p string
	if json.Unmarshal(req.Prompt, &p) == nil && p != "" {
		return p
	}
	if n := len(req.Messages); n > 0 {
		return req.Messages[n-1].Content
	}
	return ""
}
