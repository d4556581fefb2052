"""Policy test suites: ``*.test.yaml`` files that pin down what a policy decides for given accounts.

:mod:`.suite` loads and validates a suite against its own schema and against the policy it tests,
:mod:`.runner` evaluates every case and compares the decision with the expectation, :mod:`.coverage` says
which rules, stages, actions and restrictions the cases exercised, and :mod:`.report` renders the outcome
as text, JSON or JUnit XML.
"""
