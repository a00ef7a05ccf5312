package inspector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// QueueMessageInfo is a message waiting in an actor's queue.
type QueueMessageInfo struct {
	ID        uint64          `json:"id"`
	Name      string          `json:"name"`
	Body      json.RawMessage `json:"body"`
	CreatedAt string          `json:"createdAt"`
}

// Queue lists the committed messages of an actor's queue, oldest first
// (at most limit; 0 means 100). It reads the store and does not wake the
// actor.
func (s *Service) Queue(ctx context.Context, id string, limit int) ([]QueueMessageInfo, error) {
	if _, err := s.e.GetActor(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	ms, err := s.e.QueueMessages(ctx, id, min(limit, MaxLimit))
	if err != nil {
		return nil, fmt.Errorf("list queue of actor %s: %w", id, err)
	}
	out := make([]QueueMessageInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, QueueMessageInfo{
			ID: m.ID, Name: m.Name, Body: jsonOrNull(m.Body),
			CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339Nano),
		})
	}
	return out, nil
}
