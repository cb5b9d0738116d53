package proctest

// PID is the server's process id (a test's --event kills it by id).
func (s *Server) PID() int { return s.cmd.Process.Pid }
