/*
 * The control socket (include/control.h). Requests are answered whole from
 * ctlproto.c into the client's bounded buffer, then written as the socket
 * takes them; nothing here blocks.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "control.h"
#include "log.h"

struct client {
	int fd;                       /* -1: free slot */
	char in[CTL_MAX_REQUEST];
	size_t in_len;
	struct jbuf out;
	size_t out_off;
	bool answering;               /* response built, being written */
	struct ctl_cont *cont;        /* rest of a show, built as it drains */
	uint64_t deadline;
	char who[48];                 /* "uid=U pid=P" (SO_PEERCRED) */
};

struct control {
	int fd, epfd;
	uint32_t tag_listen, tag_client0;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	control_env_fn env_fn;
	void *env_ctx;
	struct client cl[CONTROL_MAX_CLIENTS];
	struct control_stats st;
};

/* A user name or number into *uid. Returns 0 or -1 (errno ENOENT). */
static int lookup_user(const char *name, uid_t *uid)
{
	struct passwd *pw;
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(name, &end, 10);
	if (*name != '\0' && *end == '\0' && errno == 0) {
		*uid = (uid_t)v;
		return 0;
	}
	pw = getpwnam(name);
	if (pw == NULL) {
		errno = ENOENT;
		return -1;
	}
	*uid = pw->pw_uid;
	return 0;
}

/* A group name or number into *gid. Returns 0 or -1 (errno ENOENT). */
static int lookup_group(const char *name, gid_t *gid)
{
	struct group *gr;
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(name, &end, 10);
	if (*name != '\0' && *end == '\0' && errno == 0) {
		*gid = (gid_t)v;
		return 0;
	}
	gr = getgrnam(name);
	if (gr == NULL) {
		errno = ENOENT;
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

/* Whether gid is this process's group or one of its supplementary ones. */
static bool in_groups(gid_t gid)
{
	gid_t list[256];
	int n;

	if (gid == getegid())
		return true;
	n = getgroups((int)(sizeof(list) / sizeof(list[0])), list);
	for (int i = 0; i < n; i++)
		if (list[i] == gid)
			return true;
	return false;
}

bool control_chown_allowed(void)
{
	int p[2];
	bool ok;

	if (pipe2(p, O_CLOEXEC) < 0)
		return true;   /* cannot tell: the chown itself will */
	ok = fchown(p[0], (uid_t)-1, (gid_t)-1) == 0 || errno != EPERM;
	close(p[0]);
	close(p[1]);
	return ok;
}

int control_check_ids(const char *owner, const char *group,
		      bool cap_chown, bool chown_allowed, char *err,
		      size_t errlen)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	bool new_owner, new_group;

	if (owner[0] != '\0' && lookup_user(owner, &uid) < 0) {
		snprintf(err, errlen, "control.owner = \"%s\": no such user",
			 owner);
		return -1;
	}
	if (group[0] != '\0' && lookup_group(group, &gid) < 0) {
		snprintf(err, errlen, "control.group = \"%s\": no such group",
			 group);
		return -1;
	}
	new_owner = uid != (uid_t)-1 && uid != geteuid();
	new_group = gid != (gid_t)-1 && !in_groups(gid);
	if (new_owner && !cap_chown) {
		snprintf(err, errlen, "control.owner = \"%s\": giving the socket "
			 "to another user needs CAP_CHOWN, which the daemon does "
			 "not have (the packaged unit grants none): leave "
			 "control.owner unset", owner);
		return -1;
	}
	if (new_group && !cap_chown) {
		snprintf(err, errlen, "control.group = \"%s\": the daemon's user "
			 "is not in this group and has no CAP_CHOWN: add the "
			 "group to the unit's SupplementaryGroups= (or leave "
			 "control.group unset)", group);
		return -1;
	}
	if ((new_owner || (gid != (gid_t)-1 && gid != getegid())) &&
	    !chown_allowed) {
		snprintf(err, errlen, "control.%s = \"%s\": chown(2) is refused "
			 "by a system call filter (the unit's SystemCallFilter= "
			 "must allow chown)", new_owner ? "owner" : "group",
			 new_owner ? owner : group);
		return -1;
	}
	return 0;
}

/* Makes the socket's directory when it is missing (one level, as under
 * /run without systemd's RuntimeDirectory=). */
static void make_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		log_warn("mkdir %s", dir);
}

/* Removes a stale socket at path; a live one (a daemon answers) stays and
 * the call fails with EADDRINUSE. Returns 0 or -1. */
static int clear_stale(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, r;

	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (r == 0) {
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(sun->sun_path);
}

/*
 * Gives the socket owner uid and group gid ((uid_t)-1/(gid_t)-1: keep),
 * calling chown only when that changes something: the packaged unit's
 * system call filter refuses chown even to the daemon's own group. A
 * failure names the config key. Returns 0 or -1 (logged).
 */
static int set_ids(const char *path, uid_t uid, gid_t gid, const char *owner,
		   const char *group)
{
	struct stat st;
	bool new_owner;

	if (stat(path, &st) < 0) {
		log_warn("control socket %s", path);
		return -1;
	}
	new_owner = uid != (uid_t)-1 && uid != st.st_uid;
	if (!new_owner && (gid == (gid_t)-1 || gid == st.st_gid))
		return 0;
	if (chown(path, uid, gid) == 0)
		return 0;
	log_msg(LOG_LEVEL_ERROR, "control.%s = \"%s\": cannot chown %s: %s "
		"(an owner needs CAP_CHOWN, a group membership or CAP_CHOWN, "
		"and the unit's system call filter must allow chown)",
		new_owner ? "owner" : "group", new_owner ? owner : group, path,
		strerror(errno));
	return -1;
}

/* Binds and listens with the final mode and owner; the socket is created
 * 0600 (umask) so there is no window with wider access. Returns 0 or -1;
 * *config_error says whether a config value was the cause. */
static int bind_socket(struct control *c, unsigned mode, const char *owner,
		       const char *group, bool *config_error)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	mode_t old;
	int r;

	*config_error = true;
	if (owner[0] != '\0' && lookup_user(owner, &uid) < 0) {
		log_msg(LOG_LEVEL_ERROR, "control.owner = \"%s\": no such user",
			owner);
		return -1;
	}
	if (group[0] != '\0' && lookup_group(group, &gid) < 0) {
		log_msg(LOG_LEVEL_ERROR, "control.group = \"%s\": no such group",
			group);
		return -1;
	}
	*config_error = false;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->path);
	make_dir(c->path);
	if (clear_stale(&sun) < 0) {
		log_warn("control socket %s", c->path);
		return -1;
	}
	old = umask(0177);
	r = bind(c->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0) {
		log_warn("bind %s", c->path);
		return -1;
	}
	if (set_ids(c->path, uid, gid, owner, group) < 0) {
		*config_error = true;
		unlink(c->path);
		return -1;
	}
	if (chmod(c->path, (mode_t)mode) < 0 || listen(c->fd, 16) < 0) {
		log_warn("control socket %s", c->path);
		return -1;
	}
	return 0;
}

struct control *control_open(const char *path, unsigned mode,
			     const char *owner, const char *group, int epfd,
			     uint32_t tag_listen, uint32_t tag_client0,
			     control_env_fn env_fn, void *env_ctx,
			     bool *config_error)
{
	struct control *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };
	bool dummy;

	if (config_error == NULL)
		config_error = &dummy;
	*config_error = false;

	if (c == NULL) {
		log_warn("control socket");
		return NULL;
	}
	c->epfd = epfd;
	c->tag_listen = tag_listen;
	c->tag_client0 = tag_client0;
	c->env_fn = env_fn;
	c->env_ctx = env_ctx;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		c->cl[i].fd = -1;
		jbuf_init(&c->cl[i].out, CTL_MAX_RESPONSE);
	}
	if (strlen(path) >= sizeof(c->path)) {
		errno = ENAMETOOLONG;
		log_warn("control socket %s", path);
		free(c);
		return NULL;
	}
	memcpy(c->path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		log_warn("control socket");
		free(c);
		return NULL;
	}
	if (bind_socket(c, mode, owner, group, config_error) < 0)
		goto fail;
	ev.data.u32 = tag_listen;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		log_warn("epoll_ctl");
		unlink(c->path);
		goto fail;
	}
	log_info("control socket %s (mode %04o)", c->path, mode);
	return c;
fail:
	close(c->fd);
	free(c);
	return NULL;
}

/* Closes one client and frees its slot (the buffer's memory too: an idle
 * daemon should not hold on to a 4 MiB answer). */
static void drop(struct control *c, struct client *k)
{
	if (k->fd < 0)
		return;
	close(k->fd);   /* also leaves the epoll set */
	k->fd = -1;
	k->in_len = 0;
	k->out_off = 0;
	k->answering = false;
	ctl_cont_finish(k->cont);   /* a flush is never left half done */
	ctl_cont_free(k->cont);
	k->cont = NULL;
	jbuf_free(&k->out);
	jbuf_init(&k->out, CTL_MAX_RESPONSE);
	(void)c;
}

/* Who is on the other end of fd ("uid=0 pid=1234"), for the log lines of
 * the changes it asks for; "" when the kernel does not say. */
static void peer_of(int fd, char *buf, size_t len)
{
	struct ucred cred;
	socklen_t n = sizeof(cred);

	buf[0] = '\0';
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0 &&
	    n == sizeof(cred))
		snprintf(buf, len, "uid=%u pid=%d", (unsigned)cred.uid,
			 (int)cred.pid);
}

void control_on_listen(struct control *c, uint64_t now)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct client *k = NULL;
		unsigned i;
		int fd = accept4(c->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED) {
				c->st.errors++;
				log_warn("control accept");
			}
			return;
		}
		for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
			if (c->cl[i].fd < 0) {
				k = &c->cl[i];
				break;
			}
		if (k == NULL) {
			static const char busy[] =
				"error busy too many control clients\n";

			c->st.refused++;
			(void)send(fd, busy, sizeof(busy) - 1,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		ev.data.u32 = c->tag_client0 + i;
		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			c->st.errors++;
			log_warn("epoll_ctl");
			close(fd);
			continue;
		}
		c->st.accepted++;
		k->fd = fd;
		k->deadline = now + CONTROL_TIMEOUT_MS;
		peer_of(fd, k->who, sizeof(k->who));
	}
}

/* Writes what the socket takes; when the buffer is drained and a show has
 * more, builds its next slice (one per call, so that the loop gets back to
 * packets in between). Returns 1 when all is written, 0 when more remains
 * (EPOLLOUT set), -1 on error. */
static int flush_out(struct control *c, struct client *k)
{
	bool sliced = false;

	for (;;) {
		while (k->out_off < k->out.len) {
			ssize_t n = send(k->fd, k->out.p + k->out_off,
					 k->out.len - k->out_off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					goto wait;
				return -1;
			}
			k->out_off += (size_t)n;
			/* no new deadline: a reader that takes a little at a
			 * time would keep its slot for ever */
		}
		if (k->cont == NULL)
			return 1;
		if (sliced)
			break;
		jbuf_consume(&k->out);
		k->out_off = 0;
		if (ctl_continue(k->cont, &k->out, CTL_SHOW_SLICE)) {
			ctl_cont_free(k->cont);
			k->cont = NULL;
		}
		if (k->out.overflow)
			return -1;   /* a slice cannot get that big: give up */
		sliced = true;
	}
wait:
	if (!k->answering) {
		struct epoll_event ev = {
			.events = EPOLLOUT,
			.data.u32 = c->tag_client0 + (uint32_t)(k - c->cl),
		};

		if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, k->fd, &ev) < 0)
			return -1;
	}
	k->answering = true;
	return 0;
}

/* Builds the answer to the request line in k->in (NUL-terminated). */
static void answer(struct control *c, struct client *k)
{
	struct ctl_env env;

	memset(&env, 0, sizeof(env));
	c->env_fn(c->env_ctx, &env);
	env.who = k->who[0] != '\0' ? k->who : NULL;
	if (env.n_daemon + 6 <= CTL_MAX_COUNTERS) {
		struct ctl_counter *d = env.daemon + env.n_daemon;

		d[0] = (struct ctl_counter){ "control_accepted", c->st.accepted };
		d[1] = (struct ctl_counter){ "control_refused", c->st.refused };
		d[2] = (struct ctl_counter){ "control_requests", c->st.requests };
		d[3] = (struct ctl_counter){ "control_bad_requests",
					     c->st.bad_requests };
		d[4] = (struct ctl_counter){ "control_timeouts", c->st.timeouts };
		d[5] = (struct ctl_counter){ "control_errors", c->st.errors };
		env.n_daemon += 6;
	}
	ctl_handle_line(k->in, &env, &k->out, &k->cont);
	c->st.requests++;
	if (k->out.len >= 14 && strncmp(k->out.p, "error protocol", 14) == 0)
		c->st.bad_requests++;
}

/* Reads the request; answers once its newline is in. */
static int read_request(struct control *c, struct client *k, uint64_t now)
{
	for (;;) {
		char *nl;
		ssize_t n;

		if (k->in_len == sizeof(k->in)) {
			c->st.bad_requests++;
			jbuf_reset(&k->out);
			jbuf_printf(&k->out, "error protocol request longer "
				    "than %d bytes\n", CTL_MAX_REQUEST);
			return flush_out(c, k);
		}
		n = recv(k->fd, k->in + k->in_len, sizeof(k->in) - k->in_len,
			 MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		if (n == 0 && k->in_len == 0)
			return -1;   /* gone without a word */
		if (n == 0) {        /* end of input ends the line too */
			k->in[k->in_len] = '\0';   /* in_len < size: above */
			answer(c, k);
			k->deadline = now + CONTROL_ANSWER_MS;
			return flush_out(c, k);
		}
		nl = memchr(k->in + k->in_len, '\n', (size_t)n);
		k->in_len += (size_t)n;
		if (nl == NULL)
			continue;
		*nl = '\0';
		answer(c, k);
		k->deadline = now + CONTROL_ANSWER_MS;
		return flush_out(c, k);
	}
}

void control_on_client(struct control *c, unsigned slot, uint32_t events,
		       uint64_t now)
{
	struct client *k;
	int r;

	if (slot >= CONTROL_MAX_CLIENTS || c->cl[slot].fd < 0)
		return;
	k = &c->cl[slot];
	if (k->answering)
		r = (events & (EPOLLERR | EPOLLHUP)) ? -1 : flush_out(c, k);
	else
		r = read_request(c, k, now);
	if (r != 0)
		drop(c, k);   /* done, or failed */
}

uint64_t control_next_deadline(const struct control *c)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; c != NULL && i < CONTROL_MAX_CLIENTS; i++)
		if (c->cl[i].fd >= 0 && c->cl[i].deadline < next)
			next = c->cl[i].deadline;
	return next;
}

void control_run_timers(struct control *c, uint64_t now)
{
	for (unsigned i = 0; c != NULL && i < CONTROL_MAX_CLIENTS; i++) {
		struct client *k = &c->cl[i];

		if (k->fd >= 0 && k->deadline <= now) {
			c->st.timeouts++;
			if (k->answering)
				log_msg(LOG_LEVEL_NOTICE, "control client "
					"dropped: answer not read in %d ms%s%s",
					CONTROL_ANSWER_MS, k->who[0] ? " by " :
					"", k->who);
			else
				log_msg(LOG_LEVEL_NOTICE, "control client "
					"dropped: no request in %d ms",
					CONTROL_TIMEOUT_MS);
			drop(c, k);
		}
	}
}

const struct control_stats *control_get_stats(const struct control *c)
{
	return &c->st;
}

void control_finish_work(struct control *c)
{
	for (unsigned i = 0; c != NULL && i < CONTROL_MAX_CLIENTS; i++)
		if (c->cl[i].fd >= 0)
			ctl_cont_finish(c->cl[i].cont);
}

void control_close(struct control *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		drop(c, &c->cl[i]);
		jbuf_free(&c->cl[i].out);
	}
	close(c->fd);
	unlink(c->path);
	free(c);
}
