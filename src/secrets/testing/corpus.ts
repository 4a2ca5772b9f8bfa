// biome-ignore-all lint/suspicious/noTemplateCurlyInString: placeholders like ${VAR} are test data here
/**
 * The labelled corpus: for every built-in detector at least 3 positives and 2 near-miss negatives,
 * written from each provider's published format (not from our patterns). Values are templates
 * expanded at test time by `Fakes.fill` (see fakes.ts): `t` is one token placed in three neutral
 * contexts, `p` full positive lines, `n` negative lines (a character short, a wrong checksum,
 * a placeholder, a wrong alphabet, glued to a word). `also` lists detectors that may fire on the
 * positives without counting as false positives (a key id next to its secret).
 */
export interface CorpusEntry {
  t?: string
  p?: string[]
  n: string[]
  also?: string[]
}

/** Three neutral contexts (no secret-like names, so generic rules stay out of the count). */
export const CONTEXTS = [
  (v: string) => `const ref = "${v}";`,
  (v: string) => `value: ${v}`,
  (v: string) => `see (${v}) here`,
]

const pre = (prefix: string, body: string, shortBody: string): CorpusEntry => ({
  t: `${prefix}${body}`,
  n: [`ref = "${prefix}${shortBody}"`, `ref = "${prefix}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"`],
})

export const CORPUS: Record<string, CorpusEntry> = {
  // Cloud
  'aws-access-key-id': {
    t: 'AKIA{B32:16}',
    n: ['ref = "AKIA{B32:15}"', 'id: AKIAIOSFODNN7EXAMPLE', 'x = "AKIA{u:16}l"'],
  },
  'aws-secret-access-key': {
    p: [
      'aws_secret_access_key = {b:38}Zq',
      'export AWS_SECRET_ACCESS_KEY="{b:40}"',
      '{"awsSecretKey": "{b:40}"}',
    ],
    n: [
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      'aws_secret_access_key = ${AWS_SECRET}',
      'aws_region = "{b:40}"',
    ],
  },
  'aws-credentials-pair': {
    p: ['AKIA{B32:16},{b:40}', 'ASIA{B32:16}:{b:40}', 'key AKIA{B32:16}\t{b:40}'],
    n: ['ASIA{B32:12},{b:40}', 'AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    also: ['aws-access-key-id'],
  },
  'aws-session-token': {
    p: ['aws_session_token = {b:200}', 'AWS_SESSION_TOKEN="{b:356}"', 'X-Amz-Security-Token: {b:120}=='],
    n: ['aws_session_token = {b:8}', 'aws_session_token = ${AWS_SESSION_TOKEN}'],
  },
  'aws-mws-key': pre('amzn.mws.', '{h:8}-{h:4}-{h:4}-{h:4}-{h:12}', '{h:8}-{h:4}-{h:4}-{h:12}'),
  'gcp-api-key': pre('AIza', '{w:35}', '{w:30}'),
  'gcp-service-account': {
    p: ['@gcpsa', '@gcpsa', '@gcpsa'],
    n: [
      '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE...\\n-----END PRIVATE KEY-----\\n"}',
      '{"type": "authorized_user", "client_id": "{d:12}.apps"}',
    ],
  },
  'gcp-oauth-client-secret': pre('GOCSPX-', '{w:28}', '{w:20}'),
  'gcp-oauth-access-token': pre('ya29.', '{w:120}', '{w:12}'),
  'gcp-oauth-refresh-token': pre('1//0', '{w:70}', '{w:20}'),
  'azure-storage-connection-string': {
    p: [
      'DefaultEndpointsProtocol=https;AccountName=acct{l:6};AccountKey={b:86}==;EndpointSuffix=core.windows.net',
      'conn = "AccountName=x;AccountKey={b:86}=="',
      '<add key="s" value="DefaultEndpointsProtocol=https;AccountName=a;AccountKey={b:86}==" />',
    ],
    n: ['AccountKey={b:60}==', 'AccountKey=<your-account-key>'],
  },
  'azure-storage-account-key': {
    p: ['AZURE_STORAGE_KEY={b:86}==', 'storage_account_key: "{b:86}=="', "account_key = '{b:86}=='"],
    n: ['AZURE_STORAGE_KEY={b:40}==', 'storage_account_key: "<key>"'],
  },
  'azure-sas-token': {
    p: [
      'https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&spr=https&sig={b:43}%3D',
      'SAS="?sv=2021-08-06&sr=b&sp=rw&sig={a:44}="',
      'url: https://x.queue.core.windows.net/q?sv=2020-10-02&st=2024-01-01&se=2024-02-01&sp=raup&sig={b:43}=',
    ],
    n: ['?sv=2022-11-02&ss=b&sp=r&sig=<signature>', '?sv=2022-11-02&ss=b&sp=r'],
  },
  'azure-ad-client-secret': {
    t: '{w:3}8Q~{w:34}',
    n: ['ref = "{a:3}8Q~{a:10}"', 'ref = "abc8Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'],
  },
  'azure-service-bus-connection-string': {
    p: [
      'Endpoint=sb://ns{l:6}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={b:43}=',
      'conn: "Endpoint=sb://e.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={b:43}="',
      '"Endpoint=sb://hub.servicebus.windows.net/;SharedAccessKeyName=p;SharedAccessKey={b:43}=;EntityPath=h"',
    ],
    n: ['SharedAccessKey={b:10}=', 'SharedAccessKey=<key>'],
  },
  'alibaba-access-key-id': pre('LTAI', '{a:20}', '{a:12}'),
  'ibm-cloud-api-key': {
    p: ['IBM_CLOUD_API_KEY={w:44}', 'ibmcloud_api_key: "{w:44}"', '{"ibm_api_key": "{w:44}"}'],
    n: ['IBM_CLOUD_API_KEY={w:10}', 'ibmcloud_api_key: "${IBM_KEY}"'],
  },
  'digitalocean-pat': pre('dop_v1_', '{h:64}', '{h:40}'),
  'digitalocean-oauth-token': pre('doo_v1_', '{h:64}', '{h:40}'),
  'digitalocean-refresh-token': pre('dor_v1_', '{h:64}', '{h:40}'),
  'cloudflare-api-token': {
    p: ['CLOUDFLARE_API_TOKEN={w:40}', 'cloudflare_token: "{w:40}"', '{"cloudflareToken": "{w:40}"}'],
    n: ['CLOUDFLARE_API_TOKEN={w:10}', 'cloudflare_zone: "{d:40}"'],
  },
  'cloudflare-global-api-key': {
    p: ['CLOUDFLARE_API_KEY={h:37}', 'cf_api_key: "{h:37}"', 'cloudflare.key = {h:37}'],
    n: ['CLOUDFLARE_API_KEY={h:12}', 'cloudflare_email: "ops@corp.test"'],
  },
  'cloudflare-scannable-token': {
    p: [
      'const ref = "cfut_{a:40}{h:8}";',
      'CF_ACCOUNT_TOKEN=cfat_{a:40}{h:8}',
      'global_key: cfk_{a:40}{h:8}',
    ],
    n: [
      'ref = "cfut_{a:40}"',
      'ref = "cfat_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
      'x = "cfut_{a:40}{h:8}z"',
    ],
  },
  'cloudflare-origin-ca-key': pre('v1.0-', '{h:24}-{h:146}', '{h:24}-{h:100}'),
  'heroku-api-key': {
    p: ['HEROKU_API_KEY={uuid}', 'heroku_token: "{uuid}"', '{"herokuKey": "{uuid}"}'],
    n: ['HEROKU_APP=my-app-{l:8}', 'heroku_api_key: "${HEROKU_API_KEY}"'],
  },
  'heroku-api-key-v2': pre('HRKU-', '{w:60}', '{w:30}'),
  'yandex-api-key': pre('AQVN', '{w:36}', '{w:20}'),
  // Code hosts
  'github-pat': {
    t: '{crc:ghp_}',
    n: ['ref = "{badcrc:ghp_}"', 'ref = "ghp_{a:30}"', 'ref = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"'],
  },
  'github-oauth-token': {
    t: '{crc:gho_}',
    n: ['ref = "{badcrc:gho_}"', 'ref = "gho_16C7e42F292c6912E7710c838347Ae178B4a"'],
  },
  'github-user-to-server-token': { t: '{crc:ghu_}', n: ['ref = "{badcrc:ghu_}"', 'ref = "ghu_{a:35}"'] },
  'github-server-to-server-token': { t: '{crc:ghs_}', n: ['ref = "{badcrc:ghs_}"', 'ref = "ghs_{a:37}"'] },
  'github-refresh-token': {
    t: '{crc:ghr_}',
    n: ['ref = "{badcrc:ghr_}"', 'ref = "ghr_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'],
  },
  'github-fine-grained-pat': pre('github_pat_', '{a:22}_{a:59}', '{a:22}_{a:30}'),
  'gitlab-pat': pre('glpat-', '{w:20}', '{w:12}'),
  'gitlab-pipeline-trigger-token': pre('glptt-', '{h:40}', '{h:30}'),
  'gitlab-runner-registration-token': pre('GR1348941', '{w:20}', '{w:12}'),
  'gitlab-runner-token': pre('glrt-', '{w:20}', '{w:12}'),
  'gitlab-deploy-token': pre('gldt-', '{w:20}', '{w:12}'),
  'gitlab-feed-token': pre('glft-', '{w:20}', '{w:12}'),
  'gitlab-oauth-app-secret': pre('gloas-', '{h:64}', '{h:40}'),
  'gitlab-cicd-job-token': pre('glcbt-', '{w:30}', '{w:12}'),
  'bitbucket-app-password': pre('ATBB', '{a:32}', '{a:16}'),
  'atlassian-api-token': pre('ATATT3', '{w:186}', '{w:60}'),
  'circleci-pat': pre('CCIPAT_', '{a:22}_{h:40}', '{a:22}_{h:20}'),
  'buildkite-token': pre('bkua_', '{h:40}', '{h:30}'),
  'sonarqube-token': { t: 'squ_{h:40}', n: ['ref = "squ_{h:30}"', 'ref = "sqx_{h:40}"'] },
  'postman-api-key': pre('PMAK-', '{h:24}-{h:34}', '{h:24}-{h:20}'),
  'snyk-token-v2': pre('snyk_sat.', '{w:40}.{w:40}', '{w:10}'),
  'jfrog-api-key': pre('AKCp', '{a:69}', '{a:40}'),
  'jfrog-reference-token': pre('cmVmdGtu', '{a:56}', '{a:30}'),
  'harness-pat': pre('pat.', '{w:22}.{h:24}.{a:20}', '{w:22}.{h:24}'),
  // Messaging
  'slack-bot-token': pre('xoxb-', '{d:12}-{d:13}-{a:24}', '{d:12}-{a:24}'),
  'slack-user-token': pre('xoxp-', '{d:12}-{d:12}-{d:13}-{h:32}', '{d:12}-{h:32}'),
  'slack-app-token': pre('xapp-', '1-A{u:10}-{d:13}-{h:64}', '1-A{u:10}-{h:64}'),
  'slack-config-token': pre('xoxe.xoxp-', '1-{a:163}', '1-{a:40}'),
  'slack-legacy-token': pre('xoxs-', '{d:12}-{a:40}', '{A:6}'),
  'slack-webhook-url': {
    p: [
      'https://hooks.slack.com/services/T{u:9}/B{u:9}/{a:24}',
      'SLACK_URL=https://hooks.slack.com/services/T{u:10}/B{u:11}/{a:24}',
      '"url": "https://hooks.slack.com/workflows/T{u:9}/A{u:9}/{d:18}/{a:24}"',
    ],
    n: [
      'https://hooks.slack.com/services/T{u:9}/B{u:9}/{a:10}',
      'https://hooks.slack.com/services/TXXXXXXXX/BXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX',
    ],
  },
  'discord-bot-token': {
    p: [
      'DISCORD_TOKEN=M{w:23}.{w:6}.{w:27}',
      'discord_bot_token: "N{w:25}.{w:6}.{w:38}"',
      'discord.token = "Bot O{w:24}.{w:6}.{w:30}"',
    ],
    n: ['DISCORD_TOKEN=M{w:10}', 'discord_channel: "{d:18}"'],
  },
  'discord-webhook-url': {
    t: 'https://discord.com/api/webhooks/{d:18}/{w:68}',
    n: ['https://discord.com/api/webhooks/{d:18}/{w:20}', 'https://discord.com/api/webhooks/<id>/<token>'],
  },
  'telegram-bot-token': {
    t: '{d:10}:AA{w:33}',
    n: ['ref = "{d:10}:AA{w:20}"', 'ref = "{d:5}:AA{w:33}"'],
  },
  'twilio-auth-token': {
    p: ['TWILIO_AUTH_TOKEN={h:32}', 'twilio_token: "{h:32}"', '{"twilioAuthToken": "{h:32}"}'],
    n: ['TWILIO_AUTH_TOKEN={h:20}', 'TWILIO_ACCOUNT_SID=AC{h:32}'],
  },
  'twilio-api-key-sid': {
    p: [
      'TWILIO_API_KEY=SK{h:32}',
      'twilio:\n  api_key: SK{h:32}',
      'client = twilio.Client("SK{h:32}", secret)',
    ],
    n: ['TWILIO_API_KEY=SK{h:8}', 'twilio_sid = "SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'],
  },
  'sendgrid-api-key': pre('SG.', '{w:22}.{w:43}', '{w:22}.{w:20}'),
  'mailchimp-api-key': {
    t: '{h:32}-us{d:1}',
    n: ['ref = "{h:20}-us6"', 'ref = "{u:32}-us6"'],
  },
  'mailchimp-transactional-key': pre('md-', '{w:22}', '{w:10}'),
  'mailgun-api-key': pre('key-', '{h:32}', '{h:20}'),
  'mailgun-private-key': {
    p: [
      'MAILGUN_API_KEY={h:32}-{h:8}-{h:8}',
      'mailgun_key: "{h:32}-{h:8}-{h:8}"',
      '{"mailgunApiKey": "{h:32}-{h:8}-{h:8}"}',
    ],
    n: ['MAILGUN_DOMAIN=mg.example.org', 'mailgun_key: "{h:32}-{h:8}"'],
  },
  'postmark-server-token': {
    p: ['POSTMARK_SERVER_TOKEN={uuid}', 'postmark_api_token: "{uuid}"', 'X-Postmark-Server-Token: {uuid}'],
    n: ['POSTMARK_FROM=noreply@mail.test', 'postmark_token: "POSTMARK_API_TEST"'],
  },
  'brevo-api-key': pre('xkeysib-', '{h:64}-{a:16}', '{h:64}'),
  'teams-webhook-url': {
    t: 'https://acme{l:4}.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/{h:32}/{uuid}',
    n: [
      'https://acme.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/',
      'https://x.webhook.office.com/webhookb2/<id>',
    ],
  },
  'mailjet-api-key': {
    p: ['MAILJET_API_SECRET={h:32}', 'mailjet_secret: "{h:32}"', '{"mailjetKey": "{h:32}"}'],
    n: ['MAILJET_API_SECRET={h:10}', 'mailjet_from: "{d:32}"'],
  },
  // Payments
  'stripe-secret-key': pre('sk_live_', '{a:24}', '{a:12}'),
  'stripe-restricted-key': pre('rk_live_', '{a:99}', '{a:10}'),
  'stripe-test-secret-key': {
    t: 'sk_test_{a:24}',
    n: ['ref = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"', 'ref = "sk_test_{a:10}"'],
  },
  'stripe-webhook-secret': pre('whsec_', '{a:32}', '{a:10}'),
  'square-access-token': pre('EAAA', '{w:60}', '{w:10}'),
  'square-oauth-secret': pre('sq0csp-', '{w:43}', '{w:20}'),
  'braintree-access-token': pre('access_token$production$', '{l:16}${h:32}', '{l:16}${h:20}'),
  'paypal-client-secret': {
    p: ['PAYPAL_CLIENT_SECRET={w:80}', 'paypal_secret: "{w:80}"', '{"paypalClientSecret": "{w:80}"}'],
    n: ['PAYPAL_CLIENT_SECRET={w:10}', 'PAYPAL_CLIENT_ID={w:80}'],
  },
  'braintree-private-key': {
    p: [
      'BRAINTREE_PRIVATE_KEY={h:32}',
      'braintree_private_key: "{h:32}"',
      '{"braintreePrivateKey": "{h:32}"}',
    ],
    n: ['BRAINTREE_PUBLIC_KEY={h:16}', 'BRAINTREE_MERCHANT_ID={l:16}'],
  },
  'razorpay-key': pre('rzp_live_', '{a:14}', '{a:8}'),
  'flutterwave-secret-key': pre('FLWSECK-', '{h:32}-X', '{h:20}-X'),
  'plaid-access-token': pre('access-production-', '{uuid}', '{h:8}-{h:4}'),
  'shopify-access-token': pre('shpat_', '{h:32}', '{h:20}'),
  'shopify-custom-app-token': pre('shpca_', '{h:32}', '{h:20}'),
  'shopify-private-app-token': pre('shppa_', '{h:32}', '{h:20}'),
  'shopify-shared-secret': pre('shpss_', '{h:32}', '{h:20}'),
  'easypost-api-key': pre('EZAK', '{a:54}', '{a:30}'),
  'shippo-api-token': pre('shippo_live_', '{h:40}', '{h:20}'),
  'duffel-api-token': pre('duffel_test_', '{w:43}', '{w:20}'),
  'payment-card-number': {
    p: ['card_number: "@card4"', 'creditCard = "@card5"', '{"pan": "@card3"}'],
    n: ['card_number: "@badcard"', 'order_id: "@card4"'],
  },
  // AI
  'openai-api-key': {
    t: 'sk-proj-{w:74}T3BlbkFJ{w:74}',
    n: ['ref = "sk-proj-{w:74}"', 'ref = "sk-{w:20}T3BlbkFJ{w:5}"'],
  },
  'anthropic-api-key': pre('sk-ant-api03-', '{w:93}AA', '{w:40}AA'),
  'anthropic-admin-key': pre('sk-ant-admin01-', '{w:93}AA', '{w:40}AA'),
  'huggingface-token': pre('hf_', '{A:34}', '{A:20}'),
  'groq-api-key': pre('gsk_', '{a:52}', '{a:30}'),
  'replicate-api-token': pre('r8_', '{a:37}', '{a:20}'),
  'perplexity-api-key': pre('pplx-', '{a:48}', '{a:30}'),
  'xai-api-key': pre('xai-', '{a:80}', '{a:40}'),
  'openrouter-api-key': pre('sk-or-v1-', '{h:64}', '{h:40}'),
  'langsmith-api-key': pre('lsv2_pt_', '{h:32}_{h:10}', '{h:32}'),
  'cohere-api-key': {
    p: ['COHERE_API_KEY={a:40}', 'cohere_key: "{a:40}"', '{"cohereApiKey": "{a:40}"}'],
    n: ['COHERE_API_KEY={a:10}', 'COHERE_MODEL=command-r-plus-08-2024'],
  },
  'mistral-api-key': {
    p: ['MISTRAL_API_KEY={a:32}', 'mistral_key: "{a:32}"', '{"mistralApiKey": "{a:32}"}'],
    n: ['MISTRAL_API_KEY={a:10}', 'MISTRAL_MODEL=mistral-large-latest'],
  },
  'deepseek-api-key': {
    p: ['DEEPSEEK_API_KEY=sk-{h:32}', 'deepseek_key: "sk-{h:32}"', '{"deepseekKey": "sk-{h:32}"}'],
    n: ['DEEPSEEK_API_KEY=sk-{h:8}', 'DEEPSEEK_MODEL=deepseek-chat'],
  },
  'fireworks-api-key': pre('fw_', '{a:24}', '{a:10}'),
  'together-api-key': {
    p: ['TOGETHER_API_KEY={h:64}', 'together_key: "{h:64}"', '{"togetherApiKey": "{h:64}"}'],
    n: ['TOGETHER_API_KEY={h:10}', 'together_model: "meta-llama/Llama-3-70b-chat-hf"'],
  },
  'elevenlabs-api-key': pre('sk_', '{h:48}', '{h:30}'),
  // Registries
  'npm-token': { t: '{crc:npm_}', n: ['ref = "{badcrc:npm_}"', 'ref = "npm_{a:30}"'] },
  'npmrc-auth': {
    p: [
      '//registry.npmjs.org/:_authToken={w:36}',
      '//npm.pkg.github.com/:_authToken="{a:40}"',
      '_auth={basic}',
    ],
    n: [
      '//registry.npmjs.org/:_authToken=${NPM_TOKEN}',
      '//registry.npmjs.org/:_authToken=aaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    ],
  },
  'pypi-token': pre('pypi-AgEIcHlwaS5vcmc', '{w:70}', '{w:20}'),
  'pypirc-password': {
    p: [
      '[pypi]\nusername = __token__\npassword = {w:40}',
      '[testpypi]\nrepository = https://test.pypi.org/legacy/\nusername = u\npassword = {a:16}',
      '[distutils]\nindex-servers = pypi\nusername: me\npassword: {a:20}',
    ],
    n: ['[pypi]\nusername = __token__\npassword = <your-token>', '[pypi]\nusername = me'],
  },
  'rubygems-api-key': pre('rubygems_', '{h:48}', '{h:30}'),
  'nuget-api-key': pre('oy2', '{l:43}', '{l:20}'),
  'dockerhub-pat': pre('dckr_pat_', '{w:27}', '{w:15}'),
  'docker-config-auth': {
    p: [
      '{"auths": {"https://index.docker.io/v1/": {"auth": "{basic}"}}}',
      '{"auths":{"ghcr.io":{"auth":"{basic}"}}}',
      '"registry.example.org": {\n  "auth": "{basic}"\n}',
    ],
    n: ['{"auths": {"x": {"auth": "{a:24}"}}}', '{"auths": {"x": {"auth": ""}}}'],
  },
  'crates-io-token': pre('cio', '{a:32}', '{a:20}'),
  'clojars-token': pre('CLOJARS_', '{l:60}', '{l:30}'),
  'artifactory-password-url': {
    p: [
      '<server><id>central</id><username>deploy</username><password>{a:20}</password></server>',
      '<password>{w:32}</password>',
      '  <password>{a:12}!x</password>',
    ],
    n: ['<password>${env.MAVEN_PASSWORD}</password>', '<password>changeme</password>'],
  },
  // Infra
  'vault-service-token': pre('hvs.', '{w:90}', '{w:10}'),
  'vault-batch-token': pre('hvb.', '{w:138}', '{w:40}'),
  'terraform-cloud-token': {
    t: '{a:14}.atlasv1.{w:67}',
    n: ['ref = "{a:14}.atlasv1.{w:20}"', 'ref = "{a:8}.atlasv1.{w:67}"'],
  },
  'pulumi-access-token': pre('pul-', '{h:40}', '{h:20}'),
  'doppler-token': pre('dp.pt.', '{a:43}', '{a:20}'),
  'datadog-api-key': {
    p: ['DD_API_KEY={h:32}', 'datadog_api_key: "{h:32}"', '{"dd-api-key": "{h:32}"}'],
    n: ['DD_API_KEY={h:20}', 'DD_SITE=datadoghq.eu'],
  },
  'datadog-app-key': {
    p: ['DD_APP_KEY={h:40}', 'datadog_application_key: "{h:40}"', '{"dd_app_key": "{h:40}"}'],
    n: ['DD_APP_KEY={h:32}', 'DD_APP_KEY=${DATADOG_APP_KEY}'],
  },
  'newrelic-user-api-key': pre('NRAK-', '{u:27}', '{u:15}'),
  'newrelic-insert-key': pre('NRII-', '{w:32}', '{w:15}'),
  'newrelic-browser-key': pre('NRJS-', '{h:19}', '{h:10}'),
  'newrelic-license-key': { t: '{h:36}NRAL', n: ['ref = "{h:20}NRAL"', 'ref = "{u:36}NRAL"'] },
  'sentry-dsn': {
    t: 'https://{h:32}@o{d:6}.ingest.sentry.io/{d:7}',
    n: ['https://<key>@o0.ingest.sentry.io/0', 'https://{h:20}@o{d:6}.ingest.sentry.io/{d:7}'],
  },
  'sentry-org-token': pre('sntrys_', 'eyJ{w:120}', '{w:40}'),
  'sentry-user-token': pre('sntryu_', '{h:64}', '{h:30}'),
  'grafana-cloud-token': pre('glc_', '{b:120}', '{b:20}'),
  'grafana-service-account-token': pre('glsa_', '{a:32}_{h:8}', '{a:32}'),
  'planetscale-token': pre('pscale_tkn_', '{w:43}', '{w:20}'),
  'supabase-access-token': pre('sbp_', '{h:40}', '{h:20}'),
  'databricks-token': pre('dapi', '{h:32}', '{h:20}'),
  'dynatrace-token': pre('dt0c01.', '{u:24}.{u:64}', '{u:24}'),
  'okta-api-token': {
    p: ['OKTA_API_TOKEN=00{w:40}', 'okta_token: "00{w:40}"', '{"oktaApiToken": "00{w:40}"}'],
    n: ['OKTA_API_TOKEN=00{w:8}', 'OKTA_DOMAIN=dev-{d:6}.okta.com'],
  },
  'age-secret-key': pre('AGE-SECRET-KEY-1', '{bech:58}', '{bech:30}'),
  'linear-api-key': pre('lin_api_', '{a:40}', '{a:20}'),
  'airtable-api-key': {
    p: [
      'AIRTABLE_API_KEY=pat{a:14}.{h:64}',
      'airtable_token: "pat{a:14}.{h:64}"',
      '{"airtableKey": "pat{a:14}.{h:64}"}',
    ],
    n: ['AIRTABLE_API_KEY=pat{a:8}', 'AIRTABLE_BASE=app{a:14}'],
  },
  'notion-token': pre('ntn_', '{d:11}{a:35}', '{d:11}{a:10}'),
  'figma-pat': pre('figd_', '{w:40}', '{w:20}'),
  'contentful-pat': pre('CFPAT-', '{w:43}', '{w:20}'),
  'hubspot-pat': pre('pat-na1-', '{uuid}', '{h:8}-{h:4}'),
  'tailscale-key': pre('tskey-auth-', '{a:12}-{a:30}', '{a:12}'),
  'docker-swarm-join-token': pre('SWMTKN-1-', '{l:50}-{l:25}', '{l:50}'),
  'infracost-api-key': pre('ico-', '{a:32}', '{a:20}'),
  'prefect-api-key': pre('pnu_', '{a:36}', '{a:20}'),
  'readme-api-key': pre('rdme_', '{l:70}', '{l:30}'),
  'typeform-token': pre('tfp_', '{w:59}', '{w:30}'),
  'frameio-token': pre('fio-u-', '{w:64}', '{w:30}'),
  'adobe-client-secret': pre('p8e-', '{a:32}', '{a:20}'),
  'clickup-token': pre('pk_', '{d:8}_{u:32}', '{d:8}_{u:16}'),
  'mapbox-secret-token': pre('sk.eyJ', '{w:80}.{w:22}', '{w:20}'),
  'algolia-admin-key': {
    p: ['ALGOLIA_ADMIN_KEY={h:32}', 'algolia_api_key: "{h:32}"', '{"algoliaWriteKey": "{h:32}"}'],
    n: ['ALGOLIA_APP_ID={u:10}', 'ALGOLIA_ADMIN_KEY={h:20}'],
  },
  'fastly-api-token': {
    p: ['FASTLY_API_TOKEN={w:32}', 'fastly_token: "{w:32}"', '{"fastlyKey": "{w:32}"}'],
    n: ['FASTLY_API_TOKEN={w:10}', 'FASTLY_SERVICE=my-service-name-here-for-prod'],
  },
  'netlify-token': {
    p: ['NETLIFY_AUTH_TOKEN={w:43}', 'netlify_token: "nfp_{a:36}"', '{"netlifyToken": "{w:40}"}'],
    n: ['NETLIFY_AUTH_TOKEN={w:10}', 'NETLIFY_SITE_ID={uuid}'],
  },
  'vercel-prefixed-token': {
    p: ['const ref = "vcp_{a:56}";', 'VERCEL_TOKEN=vci_{a:24}', 'apiKey: "vck_{a:40}"'],
    n: [
      'ref = "vcp_{a:12}"',
      'ref = "vca_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
      'id = "vcp_abcdefghijklmnopqrstuvwxyz"',
    ],
  },
  'vercel-token': {
    p: ['VERCEL_TOKEN={a:24}', 'vercel_token: "{a:24}"', '{"vercelToken": "{a:24}"}'],
    n: ['VERCEL_TOKEN={a:12}', 'VERCEL_ORG_ID=team_{a:10}'],
  },
  'snyk-api-token': {
    p: ['SNYK_TOKEN={uuid}', 'snyk_token: "{uuid}"', '{"snykApiToken": "{uuid}"}'],
    n: ['SNYK_ORG=my-org', 'SNYK_TOKEN={h:8}-{h:4}'],
  },
  'firebase-cloud-messaging-key': pre('AAAA', '{w:7}:APA91b{w:134}', '{w:7}:APA91b{w:40}'),
  'facebook-access-token': pre('EAAB', '{a:120}', '{a:30}'),
  'twitter-bearer-token': pre('AAAAAAAAAAAAAAAAAAAAA', '{a:80}', '{a:20}'),
  'dropbox-token': pre('sl.', '{w:138}', '{w:40}'),
  'ngrok-authtoken': {
    p: [
      'NGROK_AUTHTOKEN=2{a:26}_{a:21}',
      'ngrok_token: "2{a:26}_{a:21}"',
      'ngrok config add-authtoken: 2{a:26}_{a:21}',
    ],
    n: ['NGROK_AUTHTOKEN=2{a:10}', 'NGROK_REGION=eu'],
  },
  'fly-io-token': pre('fo1_', '{w:43}', '{w:10}'),
  'scalingo-token': pre('tk-us-', '{w:48}', '{w:20}'),
  'render-api-key': pre('rnd_', '{a:32}', '{a:20}'),
  'defined-networking-key': pre('dnkey-', '{l:26}-{l:52}', '{l:26}'),
  'octopus-deploy-key': pre('API-', '{u:26}', '{u:10}'),
  'onepassword-service-token': pre('ops_eyJ', '{w:300}', '{w:40}'),
  // Keys
  'private-key-rsa': {
    p: ['@pem:rsa', '@pemjson:rsa', '@pem:rsa'],
    n: [
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----',
      '-----BEGIN RSA PUBLIC KEY-----\n{b:64}\n-----END RSA PUBLIC KEY-----',
    ],
  },
  'private-key-ec': {
    p: ['@pem:ec', '@pemjson:ec', '@pem:ec'],
    n: [
      '-----BEGIN EC PRIVATE KEY-----\n<key>\n-----END EC PRIVATE KEY-----',
      '-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----',
    ],
  },
  'private-key-dsa': {
    p: ['@pem:dsa', '@pemjson:dsa', '@pem:dsa'],
    n: [
      '-----BEGIN DSA PRIVATE KEY-----\n...\n-----END DSA PRIVATE KEY-----',
      '-----BEGIN DSA PRIVATE KEY-----\n{a:20}\n-----END DSA PRIVATE KEY-----',
    ],
  },
  'private-key-pkcs8': {
    p: ['@pem:pkcs8', '@pemjson:pkcs8', '@pem:pkcs8'],
    n: [
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----',
      '-----BEGIN PUBLIC KEY-----\n{b:64}\n-----END PUBLIC KEY-----',
    ],
  },
  'private-key-pkcs8-encrypted': {
    p: ['@pem:encrypted', '@pemjson:encrypted', '@pem:encrypted'],
    n: [
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\n...\n-----END ENCRYPTED PRIVATE KEY-----',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----',
    ],
  },
  'private-key-openssh': {
    p: ['@openssh', '@openssh', '@openssh'],
    n: [
      '-----BEGIN OPENSSH PRIVATE KEY-----\n{b:100}\n-----END OPENSSH PRIVATE KEY-----',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{b:43} me@host',
    ],
  },
  'private-key-pgp': {
    p: ['@pgp', '@pgp', '@pgp'],
    n: [
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{b:64}\n-----END PGP PUBLIC KEY BLOCK-----',
      '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n...\n-----END PGP PRIVATE KEY BLOCK-----',
    ],
  },
  'private-key-putty': {
    p: [
      'PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key\nPublic-Lines: 2\n{b:64}\n{b:20}\nPrivate-Lines: 2\n{b:64}\n{b:32}\nPrivate-MAC: {h:40}\n',
      'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ed\nPublic-Lines: 1\n{b:68}\nPrivate-Lines: 1\n{b:44}\n',
      'PuTTY-User-Key-File-2: ecdsa-sha2-nistp256\nEncryption: none\nComment: k\nPublic-Lines: 1\n{b:60}\nPrivate-Lines: 1\n{b:44}\n',
    ],
    n: [
      'PuTTY-User-Key-File-2: ssh-rsa',
      'PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: x\nPublic-Lines: 2\n{b:64}\n',
    ],
  },
  jwt: {
    t: '{jwt}',
    n: [
      'ref = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"',
      'ref = "eyJ{w:20}.eyJ{w:20}.{w:20}"',
    ],
  },
  'wireguard-private-key': {
    p: [
      '[Interface]\nPrivateKey = {b:42}A=\nAddress = 10.0.0.2/32',
      'PrivateKey={b:42}Q=',
      'PrivateKey = {b:42}w=',
    ],
    n: ['PrivateKey = {b:30}=', 'PrivateKey = <private key>'],
  },
  'portcullis-api-key': { t: '{crc:pcl_}', n: ['ref = "{badcrc:pcl_}"', 'ref = "pcl_{a:30}"'] },
  // Generic
  'database-url-password': {
    p: [
      'DATABASE_URL=postgres://app:{a:16}@db.internal:5432/app',
      'mongodb+srv://admin:{a:20}@cluster0.ab{l:4}.mongodb.net/test',
      'REDIS_URL="redis://default:{w:24}@cache:6379"',
    ],
    n: ['DATABASE_URL=postgres://app@db.internal:5432/app', 'postgres://user:${DB_PASSWORD}@db/app'],
  },
  'basic-auth-url': {
    p: [
      'curl https://deploy:{a:18}@artifacts.internal/x.tgz',
      'git clone https://user:{w:24}@git.internal/repo.git',
      'proxy = "http://proxyuser:{a:12}@proxy.corp:3128"',
    ],
    n: ['https://user:<password>@host/', 'see https://docs.example.org/path?a=b'],
  },
  'jdbc-password': {
    p: [
      'jdbc:mysql://db:3306/app?user=app&password={a:16}',
      'url=jdbc:sqlserver://h;databaseName=d;password={a:14};',
      'jdbc:postgresql://h/db?ssl=true&password={w:20}',
    ],
    n: ['jdbc:mysql://db:3306/app?user=app', 'jdbc:postgresql://h/db?password=${DB_PASS}'],
  },
  'connection-string-password': {
    p: [
      'Server=tcp:sql.internal,1433;Initial Catalog=app;User ID=app;Password={a:16};',
      'conn="Data Source=db;Initial Catalog=x;User Id=sa;Password={a:12}!;"',
      'Host=pg;Database=app;Username=app;Password={a:20}',
    ],
    n: [
      'Server=sql;Database=app;Trusted_Connection=True;',
      'Server=sql;Database=app;User Id=sa;Password=<password>;',
    ],
  },
  'kubernetes-secret': {
    p: [
      'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: @b64text\n',
      'kind: Secret\nmetadata:\n  name: api\nstringData:\n  token: {a:24}\n',
      'apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  # the key\n  api-key: @b64text\n',
    ],
    n: [
      'kind: Secret\nmetadata:\n  name: db\ndata:\n  password: Y2hhbmdlbWU=\n',
      'kind: ConfigMap\ndata:\n  mode: production-mode\n',
    ],
  },
  'http-basic-auth-header': {
    p: [
      'Authorization: Basic {basic}',
      'curl -H "Authorization: Basic {basic}" https://api',
      "headers['Authorization'] = 'Basic {basic}'",
    ],
    n: ['Authorization: Basic {b:12}', 'Authorization: Basic <credentials>'],
  },
  'http-bearer-token': {
    p: [
      'Authorization: Bearer {w:40}',
      'curl -H "Authorization: Bearer {a:32}" https://api',
      'auth = "Bearer {w:60}"',
    ],
    n: ['Authorization: Bearer <token>', 'Authorization: Bearer ${TOKEN}'],
  },
  'generic-password': {
    p: ['DB_PASSWORD = "{a:12}!x"', '{"password": "{w:16}"}', "smtp_passwd: '{a:14}'"],
    n: ['password = "password"', 'password: "${PASSWORD}"', 'password = getPassword()'],
  },
  'generic-password-env': {
    p: ['DB_PASSWORD={a:14}', 'spring.datasource.password: {a:16}', 'MYSQL_ROOT_PASSWORD={a:20}'],
    n: ['DB_PASSWORD=${DB_PASSWORD}', 'password: getPasswordFromVault2'],
  },
  'generic-api-key': {
    p: ['API_KEY={a:32}', 'client_secret: "{w:40}"', '{"access_token": "{a:40}"}'],
    n: ['api_key = "${API_KEY}"', 'tokenizer: "gpt2-tokenizer-fast-v2"', 'secret_name: my-app-secret-2024'],
  },
}
