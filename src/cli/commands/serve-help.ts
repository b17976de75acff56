// The usage text of `yubin serve`, apart from the command so that help does not load the server.

export const SERVE_HELP = `yubin serve [--hostname NAME] [--smtp HOST:PORT] [--submission HOST:PORT] [--submissions HOST:PORT]
            [--imap HOST:PORT] [--imaps HOST:PORT] [--pop3 HOST:PORT] [--pop3s HOST:PORT] [--http HOST:PORT]
            [--dns HOST:PORT] [--init-demo]
  A listener flag replaces the config file's listeners: with any of them, only those named run.
  Port 0 picks a free port. --init-demo creates example.test and demo@example.test on an empty store.
  --submission (587: STARTTLS, then AUTH) and --submissions (465: TLS) take mail from users to send;
  --dns sets the DNS server for MX lookups and sender checks (default: the system's).`;
