/*
 * The address state of the external interface, fed netlink messages: see
 * addrwatch.h. Pure: no socket, no system call.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "addrwatch.h"

void addrwatch_init(struct addrwatch *aw, addrwatch_apply_fn apply,
		    void *ctx, uint32_t seq0)
{
	memset(aw, 0, sizeof(*aw));
	aw->apply = apply;
	aw->ctx = ctx;
	aw->seq = seq0;
}

/* Applies a new address (0 = none) through the callback. */
static void addrwatch_set(struct addrwatch *aw, uint32_t addr)
{
	if (addr == aw->addr)
		return;
	aw->addr = addr;
	aw->st.changes++;
	aw->apply(aw->ctx, addr);
}

void addrwatch_set_interface(struct addrwatch *aw, const char *ifname,
			     unsigned ifindex)
{
	if (strcmp(ifname, aw->ifname) != 0) {
		aw->addr = 0;   /* a new interface starts unknown */
		snprintf(aw->ifname, sizeof(aw->ifname), "%s", ifname);
	}
	aw->ifindex = ifindex;
	if (aw->ifname[0] != '\0')
		addrwatch_want_dump(aw);
}

void addrwatch_want_dump(struct addrwatch *aw)
{
	if (aw->ifname[0] != '\0')
		aw->want_dump = true;
}

void addrwatch_overrun(struct addrwatch *aw)
{
	aw->st.enobufs++;
	addrwatch_want_dump(aw);   /* the running dump, if any, goes on */
}

bool addrwatch_take_request(struct addrwatch *aw, uint32_t *seq)
{
	if (!aw->want_dump || aw->dumping || aw->wait_other ||
	    aw->ifname[0] == '\0')
		return false;
	aw->want_dump = false;
	aw->dumping = true;
	aw->dump_bad = false;
	aw->dump_seen = false;
	aw->dump_candidate = 0;
	aw->st.resyncs++;
	*seq = ++aw->seq;
	return true;
}

void addrwatch_send_failed(struct addrwatch *aw)
{
	aw->dumping = false;
	aw->st.errors++;
	aw->failures++;
	if (aw->failures < ADDRWATCH_RETRIES)
		aw->want_dump = true;
}

/* True when the address message belongs to the watched interface: its
 * label is the name or an alias of it ("wan0:1"), or its index is ours. */
static bool addrwatch_is_ours(const struct addrwatch *aw,
			      const struct ifaddrmsg *ifa, struct nlattr **tb)
{
	size_t n = strlen(aw->ifname);

	if (aw->ifname[0] == '\0')
		return false;
	if (tb[IFA_LABEL] != NULL) {
		const char *label = mnl_attr_get_str(tb[IFA_LABEL]);

		return strncmp(label, aw->ifname, n) == 0 &&
		       (label[n] == '\0' || label[n] == ':');
	}
	return aw->ifindex != 0 && ifa->ifa_index == aw->ifindex;
}

/* Collects the IFA_* attributes we read; callback of mnl_attr_parse. */
static int addrwatch_attr_cb(const struct nlattr *attr, void *data)
{
	struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFA_MAX) < 0)
		return MNL_CB_OK;
	if ((type == IFA_LOCAL || type == IFA_ADDRESS) &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	if (type == IFA_LABEL && mnl_attr_validate(attr, MNL_TYPE_STRING) < 0)
		return MNL_CB_OK;
	tb[type] = (struct nlattr *)attr;
	return MNL_CB_OK;
}

/* One RTM_NEWADDR / RTM_DELADDR, of our dump or a notification. */
static void addrwatch_addr(struct addrwatch *aw, const struct nlmsghdr *nlh,
			   bool in_dump)
{
	struct nlattr *tb[IFA_MAX + 1] = { NULL };
	const struct ifaddrmsg *ifa;
	const struct nlattr *a;
	uint32_t addr;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa)) {
		aw->st.errors++;
		return;
	}
	ifa = mnl_nlmsg_get_payload(nlh);
	aw->st.messages++;
	if (ifa->ifa_family != AF_INET ||
	    mnl_attr_parse(nlh, sizeof(*ifa), addrwatch_attr_cb, tb) < 0 ||
	    !addrwatch_is_ours(aw, ifa, tb))
		return;
	a = tb[IFA_LOCAL] != NULL ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (a == NULL)
		return;
	addr = ntohl(mnl_attr_get_u32(a));
	if (in_dump) {
		if (addr == aw->addr)
			aw->dump_seen = true;
		else if (aw->dump_candidate == 0 &&
			 !(ifa->ifa_flags & IFA_F_SECONDARY))
			aw->dump_candidate = addr;
	} else if (nlh->nlmsg_type == RTM_NEWADDR && aw->addr == 0) {
		addrwatch_set(aw, addr);
	} else if (nlh->nlmsg_type == RTM_DELADDR && addr == aw->addr) {
		addrwatch_set(aw, 0);
		addrwatch_want_dump(aw);   /* another one left? */
	}
}

/* Our dump ended, complete (ok) or not: apply only a complete one; ask
 * again after a failure. */
static void addrwatch_dump_end(struct addrwatch *aw, bool ok)
{
	aw->dumping = false;
	if (!ok || aw->dump_bad) {
		aw->st.dumps_failed++;
		aw->failures++;
		if (aw->failures < ADDRWATCH_RETRIES)
			aw->want_dump = true;
		return;
	}
	aw->failures = 0;
	if (!aw->dump_seen)
		addrwatch_set(aw, aw->dump_candidate);
}

/* The error code of an NLMSG_ERROR or NLMSG_DONE (0 when it has none). */
static int addrwatch_msg_error(const struct nlmsghdr *nlh)
{
	const int *err = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err))
		return 0;
	return *err;
}

/* NLMSG_DONE or NLMSG_ERROR: the end of a dump (or a request's NACK). */
static void addrwatch_end(struct addrwatch *aw, const struct nlmsghdr *nlh,
			  bool ours)
{
	int err = addrwatch_msg_error(nlh);

	if (!ours) {
		/* Another dump of this socket ended (one we lost track of):
		 * ours can run now. */
		aw->wait_other = false;
		return;
	}
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		aw->st.errors++;
		if (err == -EBUSY)
			aw->wait_other = true;   /* until that one ends */
	}
	addrwatch_dump_end(aw, nlh->nlmsg_type == NLMSG_DONE && err == 0);
}

void addrwatch_feed(struct addrwatch *aw, const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;
	int left = (int)len;
	bool any_addr = false;

	while (mnl_nlmsg_ok(nlh, left)) {
		bool ours = aw->dumping && nlh->nlmsg_seq == aw->seq;
		bool other_dump = !ours && (nlh->nlmsg_flags & NLM_F_MULTI);

		if (ours && (nlh->nlmsg_flags & NLM_F_DUMP_INTR))
			aw->dump_bad = true;
		if (nlh->nlmsg_type == RTM_NEWADDR ||
		    nlh->nlmsg_type == RTM_DELADDR) {
			any_addr = true;
			if (!other_dump)   /* a stale dump's lines: not news */
				addrwatch_addr(aw, nlh, ours);
		} else if (nlh->nlmsg_type == NLMSG_DONE ||
			   nlh->nlmsg_type == NLMSG_ERROR) {
			if (ours || nlh->nlmsg_type == NLMSG_DONE)
				addrwatch_end(aw, nlh, ours);
			else
				aw->st.errors++;
		}
		nlh = mnl_nlmsg_next(nlh, &left);
	}
	if (any_addr && aw->failures >= ADDRWATCH_RETRIES) {
		aw->failures = 0;   /* news: worth another try */
		addrwatch_want_dump(aw);
	}
}
