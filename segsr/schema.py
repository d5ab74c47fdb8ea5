"""``segsr-schema``: print the JSON schema of segsr's option files, for editors.

    segsr-schema > schema.json            # training option files (options/train)
    segsr-schema --test > schema-test.json  # test option files (options/test)
"""

import argparse
import json

from segsr.options.json_schema import option_json_schema


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='segsr-schema', description=__doc__.splitlines()[0].strip('`: '))
    parser.add_argument('--test', action='store_true', help='the schema of test option files, not training ones')
    args = parser.parse_args(argv)
    print(json.dumps(option_json_schema(is_train=not args.test), indent=2))


if __name__ == '__main__':
    main()
