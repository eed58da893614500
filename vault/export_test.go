package vault

// AuditBatches is the number of audit transactions the key reads of s
// have written (group commit), for the tests.
func AuditBatches(s *Service) int64 { return s.audit.batches.Load() }

// AuditWaiting is the number of key-read audit rows queued or being
// written.
func AuditWaiting(s *Service) int {
	s.audit.mu.Lock()
	defer s.audit.mu.Unlock()
	return len(s.audit.pending) + int(s.audit.inflight.Load())
}
