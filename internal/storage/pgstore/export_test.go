package pgstore

// SetListening lets tests learn the server process id of each change-feed
// connection, to cut it.
func SetListening(s *Store, f func(pid uint32)) { s.listening = f }
