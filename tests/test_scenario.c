/*
 * The built-in story (the demo) plays out exactly as the rules predict, and
 * its event log tells the story: one association per tunnel, one guess.
 */
#include <check.h>
#include <stdlib.h>

#include "scenario.h"

static size_t kinds[EV_MAX];

static void count(void *ctx, const struct engine_event *ev)
{
	(void)ctx;
	kinds[ev->kind]++;
}

START_TEST(builtin_story_matches_the_rules)
{
	const struct scenario_step *steps;
	size_t n = scenario_builtin(&steps);
	struct engine_config cfg;
	struct engine *eng;

	scenario_builtin_config(&cfg);
	eng = engine_new(&cfg, 7, 0, count, NULL);
	ck_assert_ptr_nonnull(eng);
	ck_assert_uint_eq(scenario_run(eng, steps, n, NULL), 0);
	ck_assert_uint_eq(kinds[EV_ASSOCIATED], 3);
	ck_assert_uint_eq(kinds[EV_SERIALIZED], 1);
	ck_assert_uint_eq(kinds[EV_BLOCKED], 1);
	ck_assert_uint_eq(kinds[EV_GUESSED], 1);
	ck_assert_uint_eq(kinds[EV_DROPPED], 2);
	ck_assert_uint_eq(engine_get_stats(eng)->esp_entries, 0);
	ck_assert_uint_eq(engine_get_stats(eng)->isakmp_entries, 0);
	ck_assert_uint_eq(kinds[EV_EXPIRED], 5);
	engine_free(eng);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("scenario");
	TCase *tc = tcase_create("builtin");
	SRunner *runner;
	int failed;

	tcase_add_test(tc, builtin_story_matches_the_rules);
	suite_add_tcase(suite, tc);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
