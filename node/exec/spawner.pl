# The reference pool's spawner (node/exec/spawner.ts starts it and speaks to
# it): a small long-lived perl process that starts each task with fork,
# setsid() and exec, so a task costs one exec (its own) and leads its own
# session and process group (pid == sid == pgid), without forking Deno.
#
# Usage: perl spawner.pl SETSID_NR CLOSE_NR [STATE_FILE]
#   SETSID_NR, CLOSE_NR: this machine's syscall numbers (the pool knows them);
#   STATE_FILE: where the live groups are kept, so the next spawner can reap
#   what this one left if it and its pool die at once (a SIGKILL of the
#   pool's group): {"boot":"<boot id>","g":[[pgid,start],...]}, start being
#   the leader's start time (/proc/<pid>/stat field 22). At start the
#   spawner SIGKILLs the groups the file names, unless the machine booted
#   since or the id now leads another process (a pid reused: someone else's
#   group), and reports them in a "W" frame (a file without a boot id, an
#   older spawner's, names no start times: it is not reaped from); then it
#   keeps the file open and rewrites it in place as each task starts (before
#   its "P") and after every loop turn that changed the groups: one write(2)
#   from offset 0, padded with spaces to the old length (still valid JSON if
#   it is killed before the truncate), no new inode per write (a tmp file and
#   rename cost ~0.3 ms per task here).
#
# Wire, all integers big-endian:
#   pool -> spawner (stdin): u32 length, then that many bytes:
#     "S" u32 id, then NUL-separated: cwd, argc, argv..., env "K=V"...
#     "K" u32 id, u8 signal number    (signals the task's whole group)
#     "R" u32 pgid                    (SIGKILLs a group a crashed pool left)
#   spawner -> pool (stdout): u8 kind, u32 id, u32 length, bytes:
#     "P" started (the pid, decimal)  "O" stdout bytes  "E" stderr bytes
#     "F" spawn failed (a message)    "X" exit: the wait status, decimal
#     "W" id 0: the recorded groups it reaped at start, comma-separated
#   A task's last frame is its "F" or "X"; "X" comes after all its output.
#
# Invariants:
# - Only this process reaps its children, so a pid it signals is never a
#   reused one: a Kill of a task that has exited is a no-op.
# - A task's exit is seen through a pidfd (Linux >= 5.3), not SIGCHLD: no
#   signal handler, so no race with select().
# - When the leader exits, its group is SIGKILLed (a background grandchild
#   must not outlive the task nor hold its pipes open), then the pipes drain
#   for DRAIN_S at most: a descendant that left the group (setsid, setpgid)
#   can hold them open for ever, and the task would never end. Its later
#   writes then fail (SIGPIPE): the reference pool does not follow a process
#   out of the task's group (SPEC §7 promises the group).
# - stdin EOF (the pool is gone) or a failed write to the pool: every live
#   group is SIGKILLed and the spawner exits, so no task outlives its pool.
# - The parent waits for each child's exec (or its failure) before reading
#   the next request, so a Kill always finds the group set up.
#
# Kept cheap on purpose: no modules (a smaller process forks faster), raw
# fds for pidfds, and the parent waits for each child's exec before going on
# (pages it wrote while the child was still a copy of it would be copied).
use strict;

my ($SETSID, $CLOSE, $STATE) = @ARGV;
$STATE //= '';
my $EINTR = 4;    # the same on every Linux architecture
my $DRAIN_S = 2;    # whole seconds (no Time::HiRes): 1 to 2 s after the leader
my $PIDFD_OPEN = 434;    # the same on every Linux architecture
# Only stdin EOF ends the spawner (it then kills every group first): a
# SIGTERM or a terminal's SIGINT/SIGHUP meant for the pool must not leave
# its tasks running unseen. A SIGKILL of the pool's group kills it outright;
# the next pool reaps the groups from its state file.
my @IGNORED = qw(PIPE INT TERM HUP);
$SIG{$_} = 'IGNORE' for @IGNORED;
binmode STDIN;
binmode STDOUT;

my %task;     # id -> {pid, start, pidfd, out, err, status}
my %by_fd;    # fd number -> [id, role]
my $inbuf = '';
my $dirty = 0;    # the live groups changed since the state file was written
my ($state_fh, $state_len) = (undef, 0);

sub first_line {
  my ($path) = @_;
  open(my $fh, '<', $path) or return undef;
  my $line = <$fh>;
  close $fh;
  return $line;
}

my $BOOT = first_line('/proc/sys/kernel/random/boot_id') // '';
chomp $BOOT;

# A process's start time in clock ticks since boot; undef once it is gone.
sub start_time {
  my $stat = first_line("/proc/$_[0]/stat") // return undef;
  $stat =~ s/^.*\) //s or return undef;    # the name may hold spaces
  return (split / /, $stat)[19];
}

sub reap_recorded {
  return if $STATE eq '';
  if (open(my $in, '<', $STATE)) {
    local $/;
    my $text = <$in> // '';
    close $in;
    my ($boot) = $text =~ /"boot":"([^"]*)"/;
    my @gone;
    if (defined $boot && $boot eq $BOOT) {
      while ($text =~ /\[(\d+),(\d+)\]/g) {
        my ($g, $start) = ($1, $2);
        next if $g <= 1;
        # A live leader with another start time: the id was reused. A dead
        # one: the group, if it exists, is what this file's spawner left.
        my $now = start_time($g);
        next if defined $now && $now ne $start;
        push @gone, $g if kill('KILL', -$g);
      }
    }
    out_frame('W', 0, join(',', @gone)) if @gone;
  }
  open($state_fh, '+>', $STATE)
    or print STDERR "spawner: cannot record the worker groups in $STATE: $!\n";
}

sub save {
  $dirty = 0;
  return if !$state_fh;
  my $text = qq({"boot":"$BOOT","g":[)
    . join(',', map {"[$_->{pid},$_->{start}]"} values %task) . ']}';
  my $len = length $text;
  $text .= ' ' x ($state_len - $len) if $state_len > $len;
  sysseek($state_fh, 0, 0);
  syswrite($state_fh, $text);
  truncate($state_fh, $len) if length($text) > $len;
  $state_len = $len;
}

sub out_frame {
  my ($kind, $id, $data) = @_;
  my $buf = pack('aNN', $kind, $id, length $data) . $data;
  while (length $buf) {
    my $n = syswrite(STDOUT, $buf);
    if (!defined $n) {
      next if $! == $EINTR;
      shutdown_all();
    }
    substr($buf, 0, $n, '');
  }
}

sub shutdown_all {
  for my $t (values %task) {
    kill('KILL', -$t->{pid}) if !defined $t->{status};
  }
  unlink $STATE if $state_fh;    # nothing is left to reap
  exit 0;
}

sub start {
  my ($id, $body) = @_;
  my ($cwd, $argc, @rest) = split /\0/, $body, -1;
  my @argv = splice @rest, 0, $argc;
  my ($out_r, $out_w, $err_r, $err_w, $x_r, $x_w);
  # perl opens every fd above $^F (2) close-on-exec: a task inherits only
  # its own stdout and stderr, and $x_w closes when its exec succeeds.
  if (!(pipe($out_r, $out_w) && pipe($err_r, $err_w) && pipe($x_r, $x_w))) {
    return out_frame('F', $id, "cannot make pipes: $!");
  }
  my $pid = fork;
  if (!defined $pid) {
    return out_frame('F', $id, "cannot fork: $!");
  }
  if ($pid == 0) {
    syscall($SETSID);
    $SIG{$_} = 'DEFAULT' for @IGNORED;    # an ignored signal survives exec
    open(STDIN, '<', '/dev/null');
    open(STDOUT, '>&', $out_w);
    open(STDERR, '>&', $err_w);
    my $err;
    if (!chdir $cwd) {
      $err = "cannot run '$argv[0]': no such cwd '$cwd': $!";
    } else {
      %ENV = map { split /=/, $_, 2 } @rest;
      exec { $argv[0] } @argv;
      $err = "cannot run '$argv[0]': $!";
    }
    syswrite($x_w, $err);
    exit 127;
  }
  close $out_w;
  close $err_w;
  close $x_w;
  # The child's exec (EOF) or the reason it could not run (bytes).
  my ($why, $n) = ('', 0);
  while (($n = sysread($x_r, $why, 4096, length $why)) || (!defined $n && $! == $EINTR)) {}
  close $x_r;
  if (length $why) {
    waitpid($pid, 0);
    return out_frame('F', $id, $why);
  }
  my $pidfd = syscall($PIDFD_OPEN, $pid, 0);
  if ($pidfd < 0) {
    my $e = "$!";
    kill('KILL', -$pid);
    waitpid($pid, 0);
    return out_frame('F', $id, "pidfd_open: $e (needs Linux 5.3 or later)");
  }
  $task{$id} = {
    pid => $pid, start => start_time($pid) // 0,
    pidfd => $pidfd, out => $out_r, err => $err_r,
  };
  $by_fd{$pidfd} = [$id, 'pidfd'];
  $by_fd{ fileno $out_r } = [$id, 'out'];
  $by_fd{ fileno $err_r } = [$id, 'err'];
  save();    # recorded before anyone hears it started
  out_frame('P', $id, $pid);
}

sub signal_task {
  my ($id, $sig) = @_;
  my $t = $task{$id} or return;
  return if defined $t->{status};    # reaped: the pid may be someone else's
  kill($sig, -$t->{pid});
}

sub on_ready {
  my ($fd) = @_;
  my ($id, $role) = @{ $by_fd{$fd} };
  my $t = $task{$id};
  if ($role eq 'pidfd') {
    # The group first, while the unreaped leader still holds its id.
    kill('KILL', -$t->{pid});
    waitpid($t->{pid}, 0);
    $t->{status} = $?;
    $t->{drain_until} = time + $DRAIN_S;
    delete $by_fd{$fd};
    syscall($CLOSE, $fd);
  } else {
    my $n = sysread($t->{$role}, my $buf, 65536);
    return if !defined $n && $! == $EINTR;
    if ($n) {
      return out_frame($role eq 'out' ? 'O' : 'E', $id, $buf);
    }
    delete $by_fd{$fd};
    close delete $t->{$role};
  }
  finish($id) if defined $t->{status} && !$t->{out} && !$t->{err};
}

sub finish {
  my ($id) = @_;
  my $t = delete $task{$id};
  for my $role ('out', 'err') {
    next if !$t->{$role};
    delete $by_fd{ fileno $t->{$role} };
    close delete $t->{$role};
  }
  $dirty = 1;
  out_frame('X', $id, $t->{status});
}

# Tasks whose leader is gone but whose pipes something outside the group
# still holds: ended once their drain time is up.
sub end_drained {
  my $now = time;
  for my $id (keys %task) {
    my $t = $task{$id};
    finish($id) if defined $t->{status} && $now >= $t->{drain_until};
  }
}

sub on_stdin {
  my $n = sysread(STDIN, $inbuf, 65536, length $inbuf);
  return if !defined $n && $! == $EINTR;
  shutdown_all() if !$n;
  while (length($inbuf) >= 4) {
    my $len = unpack('N', $inbuf);
    last if length($inbuf) < 4 + $len;
    my ($op, $id) = unpack('x4 a N', $inbuf);
    if ($op eq 'S') {
      start($id, substr($inbuf, 9, $len - 5));
    } elsif ($op eq 'K') {
      signal_task($id, unpack('C', substr($inbuf, 9, 1)));
    } elsif ($op eq 'R' && $id > 1) {
      kill('KILL', -$id);
    }
    substr($inbuf, 0, 4 + $len, '');
  }
}

reap_recorded();
for (;;) {
  my $rin = '';
  vec($rin, 0, 1) = 1;
  vec($rin, $_, 1) = 1 for keys %by_fd;
  my $rout = $rin;
  my $draining = grep { defined $_->{status} } values %task;
  if (select($rout, undef, undef, $draining ? 1 : undef) < 0) {
    next if $! == $EINTR;
    die "spawner: select: $!\n";
  }
  for my $fd (keys %by_fd) {
    on_ready($fd) if $by_fd{$fd} && vec($rout, $fd, 1);
  }
  on_stdin() if vec($rout, 0, 1);
  end_drained() if $draining;
  save() if $dirty;
}
